"""MLflow REST 2.0: registered models, model versions, stages and aliases.

Registry DELETE/PATCH requests carry JSON bodies, as MLflow's client sends them. flowml accepts
an optional ``reason`` on stage transitions and alias moves (recorded in the audit history).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from flowml.entities_registry import ModelVersion, RegisteredModel
from flowml.exceptions import InvalidParameterValue
from flowml.server import auth
from flowml.server.deps import BackendDep
from flowml.server.schemas import KeyValue
from flowml.server.wire import fast_json, tags_json

router = APIRouter(tags=["model registry"])

_MAX_MODELS = 1000
_MAX_VERSIONS = 200_000


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Name(_Body):
    name: str = Field(min_length=1)


class CreateModel(Name):
    tags: list[KeyValue] = Field(default_factory=list)
    description: str | None = None


class Rename(Name):
    new_name: str = Field(min_length=1)


class Describe(Name):
    description: str | None = None


class ModelTag(Name):
    key: str
    value: str = ""


class Version(Name):
    version: str = Field(min_length=1)


class DescribeVersion(Version):
    description: str | None = None


class VersionTag(Version):
    key: str
    value: str = ""


class CreateVersion(Name):
    source: str = Field(min_length=1)
    run_id: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)
    run_link: str | None = None
    description: str | None = None


class Transition(Version):
    stage: str = Field(min_length=1)
    archive_existing_versions: bool = False
    reason: str | None = None
    comment: str | None = None


class LatestVersions(Name):
    stages: list[str] = Field(default_factory=list)


class Alias(Name):
    alias: str = Field(min_length=1)
    version: str | None = None
    reason: str | None = None


def version_json(mv: ModelVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": mv.name,
        "version": mv.version,
        "creation_timestamp": mv.creation_timestamp,
        "last_updated_timestamp": mv.last_updated_timestamp,
        "current_stage": mv.current_stage,
        "status": mv.status,
        "tags": tags_json(mv.tags),
        "aliases": list(mv.aliases),
    }
    for key in ("user_id", "description", "source", "run_id", "status_message", "run_link"):
        value = getattr(mv, key)
        if value is not None:
            out[key] = value
    return out


def model_json(rm: RegisteredModel) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": rm.name,
        "creation_timestamp": rm.creation_timestamp,
        "last_updated_timestamp": rm.last_updated_timestamp,
        "latest_versions": [version_json(v) for v in rm.latest_versions],
        "tags": tags_json(rm.tags),
        "aliases": [{"alias": a, "version": v} for a, v in rm.aliases.items()],
    }
    for key in ("user_id", "description"):
        value = getattr(rm, key)
        if value is not None:
            out[key] = value
    return out


def _actor(request: Request) -> str | None:
    """Who made the change: the authenticated user, else what the client says it is.

    Without ``--auth`` the header is a label for the audit trail, not a proof of identity.
    """
    user: str | None = getattr(request.state, "user", None)
    return user or request.headers.get("x-flowml-user") or None


def _check_max(value: int, limit: int) -> None:
    if not 1 <= value <= limit:
        raise InvalidParameterValue(
            f"Invalid value {value} for parameter 'max_results' supplied. It must be between 1 and {limit}."
        )


# -- registered models ---------------------------------------------------------------------------
@router.post("/registered-models/create")
def create_registered_model(body: CreateModel, request: Request, backend: BackendDep) -> dict[str, Any]:
    tags = {t.key: t.value for t in body.tags}
    user = auth.owner(request)
    if user is not None:
        return {
            "registered_model": model_json(
                auth.create_owned_model(backend, user, body.name, tags, body.description)
            )
        }
    rm = backend.create_registered_model(body.name, tags, body.description, _actor(request))
    return {"registered_model": model_json(rm)}


@router.get("/registered-models/get")
def get_registered_model(backend: BackendDep, name: str = Query(min_length=1)) -> dict[str, Any]:
    return {"registered_model": model_json(backend.get_registered_model(name))}


@router.post("/registered-models/rename")
def rename_registered_model(body: Rename, request: Request, backend: BackendDep) -> dict[str, Any]:
    rm = backend.rename_registered_model(body.name, body.new_name, _actor(request))
    if auth.owner(request) is not None:
        from flowml.store import auth as auth_store

        backend.db.write(lambda s: auth_store.rename_model_permissions(s, body.name, body.new_name))
    return {"registered_model": model_json(rm)}


@router.patch("/registered-models/update")
def update_registered_model(body: Describe, backend: BackendDep) -> dict[str, Any]:
    return {"registered_model": model_json(backend.update_registered_model(body.name, body.description))}


@router.delete("/registered-models/delete")
def delete_registered_model(body: Name, request: Request, backend: BackendDep) -> dict[str, Any]:
    backend.delete_registered_model(body.name, _actor(request))
    return {}


@router.get("/registered-models/search")
def search_registered_models(
    request: Request,
    backend: BackendDep,
    filter: str | None = None,
    max_results: int = 100,
    order_by: list[str] = Query(default=[]),  # noqa: B008
    page_token: str | None = None,
) -> Response:
    _check_max(max_results, _MAX_MODELS)
    filter_string = auth.restrict_filter(request, filter or None, "models")
    if filter_string == auth.NOTHING:
        return fast_json({"registered_models": []})
    page = backend.search_registered_models(filter_string, max_results, order_by, page_token)
    out: dict[str, Any] = {"registered_models": [model_json(m) for m in page]}
    if page.token:
        out["next_page_token"] = page.token
    return fast_json(out)


def _latest(body: LatestVersions, backend: BackendDep) -> dict[str, Any]:
    versions = backend.get_latest_versions(body.name, body.stages or None)
    return {"model_versions": [version_json(v) for v in versions]}


@router.post("/registered-models/get-latest-versions")
def get_latest_versions(body: LatestVersions, backend: BackendDep) -> dict[str, Any]:
    return _latest(body, backend)


@router.get("/registered-models/get-latest-versions")
def get_latest_versions_get(
    backend: BackendDep,
    name: str = Query(min_length=1),
    stages: list[str] = Query(default=[]),  # noqa: B008
) -> dict[str, Any]:
    return _latest(LatestVersions(name=name, stages=stages), backend)


@router.post("/registered-models/set-tag")
def set_registered_model_tag(body: ModelTag, backend: BackendDep) -> dict[str, Any]:
    backend.set_registered_model_tag(body.name, body.key, body.value)
    return {}


@router.delete("/registered-models/delete-tag")
def delete_registered_model_tag(body: ModelTag, backend: BackendDep) -> dict[str, Any]:
    backend.delete_registered_model_tag(body.name, body.key)
    return {}


@router.post("/registered-models/alias")
def set_alias(body: Alias, request: Request, backend: BackendDep) -> dict[str, Any]:
    if not body.version:
        raise InvalidParameterValue("Missing value for required parameter 'version'.")
    backend.set_registered_model_alias(body.name, body.alias, body.version, body.reason, _actor(request))
    return {}


@router.delete("/registered-models/alias")
def delete_alias(body: Alias, request: Request, backend: BackendDep) -> dict[str, Any]:
    backend.delete_registered_model_alias(body.name, body.alias, body.reason, _actor(request))
    return {}


@router.get("/registered-models/alias")
def get_by_alias(
    backend: BackendDep, name: str = Query(min_length=1), alias: str = Query(min_length=1)
) -> dict[str, Any]:
    return {"model_version": version_json(backend.get_model_version_by_alias(name, alias))}


# -- model versions ------------------------------------------------------------------------------
@router.post("/model-versions/create")
def create_model_version(body: CreateVersion, request: Request, backend: BackendDep) -> dict[str, Any]:
    mv = backend.create_model_version(
        body.name,
        body.source,
        body.run_id or None,
        {t.key: t.value for t in body.tags},
        body.run_link,
        body.description,
        _actor(request),
    )
    return {"model_version": version_json(mv)}


@router.get("/model-versions/get")
def get_model_version(
    backend: BackendDep, name: str = Query(min_length=1), version: str = Query(min_length=1)
) -> dict[str, Any]:
    return {"model_version": version_json(backend.get_model_version(name, version))}


@router.patch("/model-versions/update")
def update_model_version(body: DescribeVersion, backend: BackendDep) -> dict[str, Any]:
    return {
        "model_version": version_json(backend.update_model_version(body.name, body.version, body.description))
    }


@router.delete("/model-versions/delete")
def delete_model_version(body: Version, request: Request, backend: BackendDep) -> dict[str, Any]:
    backend.delete_model_version(body.name, body.version, _actor(request))
    return {}


@router.get("/model-versions/search")
def search_model_versions(
    request: Request,
    backend: BackendDep,
    filter: str | None = None,
    max_results: int = 10_000,
    order_by: list[str] = Query(default=[]),  # noqa: B008
    page_token: str | None = None,
) -> Response:
    _check_max(max_results, _MAX_VERSIONS)
    filter_string = auth.restrict_filter(request, filter or None, "models")
    if filter_string == auth.NOTHING:
        return fast_json({"model_versions": []})
    page = backend.search_model_versions(filter_string, max_results, order_by, page_token)
    out: dict[str, Any] = {"model_versions": [version_json(v) for v in page]}
    if page.token:
        out["next_page_token"] = page.token
    return fast_json(out)


@router.post("/model-versions/transition-stage")
def transition_stage(body: Transition, request: Request, backend: BackendDep) -> dict[str, Any]:
    mv = backend.transition_model_version_stage(
        body.name,
        body.version,
        body.stage,
        body.archive_existing_versions,
        body.reason or body.comment,
        _actor(request),
    )
    return {"model_version": version_json(mv)}


@router.post("/model-versions/set-tag")
def set_model_version_tag(body: VersionTag, backend: BackendDep) -> dict[str, Any]:
    backend.set_model_version_tag(body.name, body.version, body.key, body.value)
    return {}


@router.delete("/model-versions/delete-tag")
def delete_model_version_tag(body: VersionTag, backend: BackendDep) -> dict[str, Any]:
    backend.delete_model_version_tag(body.name, body.version, body.key)
    return {}


@router.get("/model-versions/get-download-uri")
def get_download_uri(
    backend: BackendDep, name: str = Query(min_length=1), version: str = Query(min_length=1)
) -> dict[str, Any]:
    return {"artifact_uri": backend.get_model_version_download_uri(name, version)}
