"""Model-registry tables (migration ``0002_registry`` mirrors them).

Shape decisions:

* ``registered_models`` has a surrogate integer key, so a rename is one UPDATE and versions, tags and
  aliases follow it; ``name_key`` (the NFKC case-folded name) is unique, so names that only differ
  in case or Unicode form cannot be registered side by side (model-poisoning guard, CVE-2024-3099).
* Ids that outlive their rows (models, history, events) never get reused: ``AUTOINCREMENT`` on
  SQLite, sequences on PostgreSQL.
* ``registry_history`` and ``registry_events`` keep ``model_id`` and the name *at the time* without
  a foreign key: the audit trail and undelivered events survive deleting the model.
* Times are epoch milliseconds in BIGINT columns, as in :mod:`flowml.store.tables`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from flowml.store.tables import table_of

__all__ = [
    "ModelVersionRow",
    "ModelVersionTagRow",
    "RegisteredModelAliasRow",
    "RegisteredModelRow",
    "RegisteredModelTagRow",
    "RegistryEventAttemptRow",
    "RegistryEventRow",
    "RegistryHistoryRow",
    "table_of",
]

_CASCADE = "CASCADE"
#: A 64-bit id that is still SQLite's rowid alias (``INTEGER PRIMARY KEY``).
ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


def _model_fk() -> Column[int]:
    return Column(
        "model_id", Integer, ForeignKey("registered_models.model_id", ondelete=_CASCADE), nullable=False
    )


class RegisteredModelRow(SQLModel, table=True):
    __tablename__ = "registered_models"
    __table_args__ = (
        UniqueConstraint("name", name="uq_registered_models_name"),
        UniqueConstraint("name_key", name="uq_registered_models_name_key"),
        {"sqlite_autoincrement": True},
    )

    model_id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    name: str = Field(sa_column=Column(String(256), nullable=False))
    name_key: str = Field(sa_column=Column(String(256), nullable=False))
    creation_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_updated_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    description: str | None = Field(default=None, sa_column=Column(String(5000)))
    user_id: str | None = Field(default=None, sa_column=Column(String(256)))


class RegisteredModelTagRow(SQLModel, table=True):
    __tablename__ = "registered_model_tags"
    __table_args__ = (PrimaryKeyConstraint("model_id", "key", name="pk_registered_model_tags"),)

    model_id: int = Field(sa_column=_model_fk())
    key: str = Field(sa_column=Column(String(250), nullable=False))
    value: str = Field(sa_column=Column(Text, nullable=False))


class ModelVersionRow(SQLModel, table=True):
    __tablename__ = "model_versions"
    __table_args__ = (
        PrimaryKeyConstraint("model_id", "version", name="pk_model_versions"),
        # get_latest_versions, archive_existing_versions and the stage gate read this.
        Index("ix_model_versions_stage", "model_id", "current_stage", "version"),
        Index("ix_model_versions_run_id", "run_id"),
    )

    model_id: int = Field(sa_column=_model_fk())
    version: int = Field(sa_column=Column(Integer, nullable=False, autoincrement=False))
    creation_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_updated_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    description: str | None = Field(default=None, sa_column=Column(String(5000)))
    user_id: str | None = Field(default=None, sa_column=Column(String(256)))
    current_stage: str = Field(sa_column=Column(String(20), nullable=False))
    source: str | None = Field(default=None, sa_column=Column(Text))
    storage_location: str | None = Field(default=None, sa_column=Column(Text))
    run_id: str | None = Field(default=None, sa_column=Column(String(32)))
    run_link: str | None = Field(default=None, sa_column=Column(Text))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    status_message: str | None = Field(default=None, sa_column=Column(String(500)))


def _version_fk(name: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        ondelete=_CASCADE,
        name=name,
    )


class ModelVersionTagRow(SQLModel, table=True):
    __tablename__ = "model_version_tags"
    __table_args__ = (
        PrimaryKeyConstraint("model_id", "version", "key", name="pk_model_version_tags"),
        _version_fk("fk_model_version_tags_version"),
    )

    model_id: int = Field(sa_column=Column(Integer, nullable=False, autoincrement=False))
    version: int = Field(sa_column=Column(Integer, nullable=False, autoincrement=False))
    key: str = Field(sa_column=Column(String(250), nullable=False))
    value: str = Field(sa_column=Column(Text, nullable=False))


class RegisteredModelAliasRow(SQLModel, table=True):
    __tablename__ = "registered_model_aliases"
    __table_args__ = (
        PrimaryKeyConstraint("model_id", "alias", name="pk_registered_model_aliases"),
        _version_fk("fk_registered_model_aliases_version"),
    )

    model_id: int = Field(sa_column=Column(Integer, nullable=False, autoincrement=False))
    alias: str = Field(sa_column=Column(String(255), nullable=False))
    version: int = Field(sa_column=Column(Integer, nullable=False))


class RegistryHistoryRow(SQLModel, table=True):
    """Stage and alias audit: who moved what from which value to which, when and why."""

    __tablename__ = "registry_history"
    __table_args__ = (
        Index("ix_registry_history_model", "model_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=Column(ID_TYPE, primary_key=True))
    model_id: int = Field(sa_column=Column(Integer, nullable=False))
    name: str = Field(sa_column=Column(String(256), nullable=False))
    version: int | None = Field(default=None, sa_column=Column(Integer))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    alias: str | None = Field(default=None, sa_column=Column(String(255)))
    from_value: str | None = Field(default=None, sa_column=Column(String(64)))
    to_value: str | None = Field(default=None, sa_column=Column(String(64)))
    user_id: str | None = Field(default=None, sa_column=Column(String(256)))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    details: str | None = Field(default=None, sa_column=Column(Text))  # JSON
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))


class RegistryEventRow(SQLModel, table=True):
    """The outbox: written in the same transaction as the change it announces."""

    __tablename__ = "registry_events"
    __table_args__ = (
        Index("ix_registry_events_model", "model_id", "id"),
        Index("ix_registry_events_pending", "delivered_time", "id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, sa_column=Column(ID_TYPE, primary_key=True))
    event_type: str = Field(sa_column=Column(String(64), nullable=False))
    model_id: int = Field(sa_column=Column(Integer, nullable=False))
    name: str = Field(sa_column=Column(String(256), nullable=False))
    version: int | None = Field(default=None, sa_column=Column(Integer))
    payload: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    created_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    delivered_time: int | None = Field(default=None, sa_column=Column(BigInteger))
    next_attempt_time: int | None = Field(default=None, sa_column=Column(BigInteger))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class RegistryEventAttemptRow(SQLModel, table=True):
    """One delivery attempt of an outbox event and its outcome."""

    __tablename__ = "registry_event_attempts"
    __table_args__ = (PrimaryKeyConstraint("event_id", "attempt", name="pk_registry_event_attempts"),)

    event_id: int = Field(
        sa_column=Column(
            "event_id", ID_TYPE, ForeignKey("registry_events.id", ondelete=_CASCADE), nullable=False
        )
    )
    attempt: int = Field(sa_column=Column(Integer, nullable=False, autoincrement=False))
    started_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    finished_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    success: bool = Field(nullable=False)
    target: str | None = Field(default=None, sa_column=Column(String(64)))
    error: str | None = Field(default=None, sa_column=Column(Text))
    details: str | None = Field(default=None, sa_column=Column(Text))  # JSON
