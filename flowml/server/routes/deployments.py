"""``/api/flowml/deployments``: deployment records (what serves where, since when, from which run).

Read by ``flowml deploy list/status`` against a server and by the UI; written by the deployment flow
when its tracking URI is the server (``POST /deployments``, ``POST /deployments/update``).

``POST /deployments/rollback`` (the UI's rollback button) runs :func:`flowml.deploy.rollback.rollback`,
the code behind ``flowml deploy rollback``, in the server process: the earlier version's Bento is served
again on *this* machine's target (``FLOWML_DEPLOYMENTS_DIR``, ``BENTOML_HOME`` of the server), and the
request returns once it serves (seconds: no rebuild) or failed (the previous deployment keeps serving).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from flowml.exceptions import FlowmlError, InvalidParameterValue, ResourceDoesNotExist
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


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    #: The version to serve again (default: the one that served before the current one).
    to_version: str | None = Field(default=None, min_length=1)
    target: str = "local"

    @field_validator("to_version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


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
    def write(s: Any) -> dict[str, Any]:
        if body.name is not None and store.get_deployment(s, body.id)["name"] != body.name:
            raise InvalidParameterValue(f"Deployment record {body.id} is not one of {body.name!r}")
        return store.update_deployment(s, body.id, **body.fields)

    return {"deployment": backend.db.write(write)}


@router.post("/deployments/rollback")
def rollback_deployment(body: RollbackRequest, request: Request, backend: BackendDep) -> dict[str, Any]:
    """Serve an earlier version's Bento again and move the stage/alias back (audited, reason "rollback").

    404 when ``name`` has no deployment on ``target``; 400 when there is nothing to roll back to; 500 with
    the failed record (``deployment``) when the earlier Bento did not come up.
    """
    from flowml.client import FlowmlClient
    from flowml.deploy.rollback import rollback
    from flowml.deploy.targets import get_target

    try:
        get_target(body.target)
    except ValueError as exc:
        raise InvalidParameterValue(str(exc)) from exc
    with backend.db.read() as s:
        history = store.list_deployments(s, body.name, None, 1000)
    if not any(d["target"] == body.target for d in history):
        raise ResourceDoesNotExist(f"No deployment of {body.name!r} on target {body.target!r}")
    user = getattr(request.state, "user", None) or request.headers.get("x-flowml-user") or None
    try:
        record = rollback(
            body.name, body.to_version, target=body.target, client=FlowmlClient(backend=backend), actor=user
        )
    except ValueError as exc:
        raise InvalidParameterValue(str(exc)) from exc
    if record.status != "SERVING":
        raise FlowmlError(
            f"Rollback of {body.name!r} to v{record.version} failed; the previous deployment keeps serving: "
            f"{record.error}",
            deployment=record.to_dict(),
        )
    return {"deployment": record.to_dict()}
