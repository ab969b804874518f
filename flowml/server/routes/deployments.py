"""``/api/flowml/deployments``: deployment records (what serves where, since when, from which run).

Read by ``flowml deploy list/status`` against a server and by the UI; written by the deployment flow
when its tracking URI is the server (``POST /deployments``, ``POST /deployments/update``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from flowml.server.deps import BackendDep
from flowml.store import deployments as store

router = APIRouter(tags=["flowml deployments"])


class NewDeployment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    target: str = Field(min_length=1)
    status: str = "PENDING"
    actor: str | None = None
    event_id: int | None = None
    flow_run_id: str | None = None
    bento_tag: str | None = None
    details: dict[str, Any] | None = None


class DeploymentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int
    name: str | None = None  # lets the auth rule find the model; must match the record
    fields: dict[str, Any]


@router.get("/deployments")
def list_deployments(
    backend: BackendDep,
    name: str | None = None,
    status: str | None = None,
    max_results: int = Query(default=100, ge=1, le=10_000),
) -> dict[str, Any]:
    with backend.db.read() as s:
        return {"deployments": store.list_deployments(s, name, status, max_results)}


@router.get("/deployments/{deployment_id}")
def get_deployment(deployment_id: int, backend: BackendDep) -> dict[str, Any]:
    with backend.db.read() as s:
        return {"deployment": store.get_deployment(s, deployment_id)}


@router.post("/deployments")
def create_deployment(body: NewDeployment, backend: BackendDep) -> dict[str, Any]:
    fields = body.model_dump(exclude={"name", "version", "target"})
    created = backend.db.write(
        lambda s: store.create_deployment(s, body.name, body.version, body.target, **fields)
    )
    return {"deployment": created}


@router.post("/deployments/update")
def update_deployment(body: DeploymentUpdate, backend: BackendDep) -> dict[str, Any]:
    from flowml.exceptions import InvalidParameterValue

    def write(s: Any) -> dict[str, Any]:
        if body.name is not None and store.get_deployment(s, body.id)["name"] != body.name:
            raise InvalidParameterValue(f"Deployment record {body.id} is not one of {body.name!r}")
        return store.update_deployment(s, body.id, **body.fields)

    return {"deployment": backend.db.write(write)}
