"""MLflow 3's logged-models endpoints (called by MLflow 3 clients from log_model/load_model)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from flowml.entities import LoggedModel, LoggedModelStatus
from flowml.server.deps import BackendDep
from flowml.server.schemas import KeyValue
from flowml.server.wire import model_metric_json, tags_json
from flowml.store.logged_models import ModelOrder

router = APIRouter(tags=["logged models"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CreateLoggedModel(_Body):
    experiment_id: str
    name: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class FinalizeLoggedModel(_Body):
    model_id: str | None = None
    status: str


class Tags(_Body):
    tags: list[KeyValue] = Field(default_factory=list)


class Params(_Body):
    params: list[KeyValue] = Field(default_factory=list)


class OrderBy(_Body):
    field_name: str
    ascending: bool = True
    dataset_name: str | None = None
    dataset_digest: str | None = None


class DatasetFilter(_Body):
    dataset_name: str | None = None
    dataset_digest: str | None = None


class SearchLoggedModels(_Body):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str | None = None
    datasets: list[DatasetFilter] = Field(default_factory=list)
    max_results: int | None = None
    order_by: list[OrderBy] = Field(default_factory=list)
    page_token: str | None = None


class ModelOutput(_Body):
    model_id: str
    step: int = 0


class LogOutputs(_Body):
    run_id: str
    models: list[ModelOutput] = Field(default_factory=list)


def logged_model_json(model: LoggedModel) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "artifact_uri": model.artifact_location,
        "creation_timestamp_ms": model.creation_timestamp,
        "last_updated_timestamp_ms": model.last_updated_timestamp,
        "status": LoggedModelStatus.parse(model.status).to_proto(),
        "tags": tags_json(model.tags),
    }
    for key in ("model_type", "source_run_id", "status_message"):
        if getattr(model, key):
            info[key] = getattr(model, key)
    metrics = [model_metric_json(point) for point in model.metrics]
    return {"info": info, "data": {"params": tags_json(model.params), "metrics": metrics}}


@router.post("/logged-models")
def create(body: CreateLoggedModel, backend: BackendDep) -> dict[str, Any]:
    model = backend.logged_models.create(
        body.experiment_id,
        body.name,
        body.source_run_id,
        {t.key: t.value for t in body.tags},
        {p.key: p.value for p in body.params},
        body.model_type,
    )
    return {"model": logged_model_json(model)}


@router.post("/logged-models/search")
def search(body: SearchLoggedModels, backend: BackendDep) -> dict[str, Any]:
    order = [ModelOrder(o.field_name, o.ascending, o.dataset_name, o.dataset_digest) for o in body.order_by]
    datasets = [d.model_dump(exclude_none=True) for d in body.datasets]
    page = backend.logged_models.search(
        body.experiment_ids, body.filter or None, body.max_results, order, body.page_token, datasets
    )
    out: dict[str, Any] = {"models": [logged_model_json(m) for m in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


@router.get("/logged-models/{model_id}")
def get(model_id: str, backend: BackendDep) -> dict[str, Any]:
    return {"model": logged_model_json(backend.logged_models.get(model_id))}


@router.patch("/logged-models/{model_id}")
def finalize(model_id: str, body: FinalizeLoggedModel, backend: BackendDep) -> dict[str, Any]:
    return {"model": logged_model_json(backend.logged_models.finalize(model_id, body.status))}


@router.delete("/logged-models/{model_id}")
def delete(model_id: str, backend: BackendDep) -> dict[str, Any]:
    backend.logged_models.delete(model_id)
    return {}


@router.patch("/logged-models/{model_id}/tags")
def set_tags(model_id: str, body: Tags, backend: BackendDep) -> dict[str, Any]:
    backend.logged_models.set_tags(model_id, {t.key: t.value for t in body.tags})
    return {}


@router.delete("/logged-models/{model_id}/tags/{key:path}")
def delete_tag(model_id: str, key: str, backend: BackendDep) -> dict[str, Any]:
    backend.logged_models.delete_tag(model_id, key)
    return {}


@router.post("/logged-models/{model_id}/params")
def log_params(model_id: str, body: Params, backend: BackendDep) -> dict[str, Any]:
    backend.logged_models.log_params(model_id, {p.key: p.value for p in body.params})
    return {}


@router.post("/runs/outputs")
def log_outputs(body: LogOutputs, backend: BackendDep) -> dict[str, Any]:
    backend.logged_models.log_outputs(body.run_id, [(m.model_id, m.step) for m in body.models])
    return {}
