"""Deployment records (migration ``0003_deployments`` mirrors this table).

One row per attempt to put a model version behind an endpoint (a deployment flow run, a rollback): what
was deployed (name, version, Bento), why (the registry event, the actor), by which Prefect flow run,
where it serves (target, endpoint URL), its status and, on failure, the reason. Like the registry's
audit rows it has no foreign key to the model: the record outlives deleting the version.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Text
from sqlmodel import Field, SQLModel

from flowml.store.registry_tables import ID_TYPE

__all__ = ["DeploymentRow"]


class DeploymentRow(SQLModel, table=True):
    __tablename__ = "deployments"
    __table_args__ = (
        Index("ix_deployments_name", "name", "id"),
        Index("ix_deployments_status", "status", "id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=Column(ID_TYPE, primary_key=True))
    name: str = Field(sa_column=Column(String(256), nullable=False))
    version: str = Field(sa_column=Column(String(32), nullable=False))
    target: str = Field(sa_column=Column(String(64), nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    event_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    flow_run_id: str | None = Field(default=None, sa_column=Column(String(64)))
    bento_tag: str | None = Field(default=None, sa_column=Column(String(256)))
    endpoint_url: str | None = Field(default=None, sa_column=Column(String(512)))
    actor: str | None = Field(default=None, sa_column=Column(String(256)))
    error: str | None = Field(default=None, sa_column=Column(Text))
    details: str | None = Field(default=None, sa_column=Column(Text))  # JSON: gate report, timings, ...
    created_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    serving_since: int | None = Field(default=None, sa_column=Column(BigInteger))
    finished_time: int | None = Field(default=None, sa_column=Column(BigInteger))
