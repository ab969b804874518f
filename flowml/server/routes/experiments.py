"""MLflow REST 2.0: experiments."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.server import auth
from flowml.server.deps import BackendDep
from flowml.server.schemas import (
    CreateExperiment,
    ExperimentId,
    ExperimentTag,
    SearchExperiments,
    UpdateExperiment,
    parse_view_type,
)
from flowml.server.wire import experiment_json

router = APIRouter(tags=["experiments"])

_MAX_EXPERIMENTS = 50_000


@router.post("/experiments/create")
def create_experiment(body: CreateExperiment, request: Request, backend: BackendDep) -> dict[str, Any]:
    tags = {t.key: t.value for t in body.tags}
    user = auth.owner(request)
    if user is not None:
        exp_id = auth.create_owned_experiment(backend, user, body.name, body.artifact_location or None, tags)
        return {"experiment_id": exp_id}
    return {"experiment_id": backend.create_experiment(body.name, body.artifact_location or None, tags)}


@router.get("/experiments/get")
def get_experiment(backend: BackendDep, experiment_id: str = Query(min_length=1)) -> dict[str, Any]:
    return {"experiment": experiment_json(backend.get_experiment(experiment_id))}


@router.get("/experiments/get-by-name")
def get_experiment_by_name(backend: BackendDep, experiment_name: str = Query(min_length=1)) -> dict[str, Any]:
    exp = backend.get_experiment_by_name(experiment_name)
    if exp is None:
        raise ResourceDoesNotExist(f"Could not find experiment with name '{experiment_name}'")
    return {"experiment": experiment_json(exp)}


def _search(body: SearchExperiments, request: Request, backend: BackendDep) -> dict[str, Any]:
    if not 1 <= body.max_results <= _MAX_EXPERIMENTS:
        raise InvalidParameterValue(
            f"Invalid value {body.max_results} for parameter 'max_results' supplied. It must be "
            f"between 1 and {_MAX_EXPERIMENTS}."
        )
    filter_string = auth.restrict_filter(request, body.filter or None, "experiments")
    if filter_string == auth.NOTHING:
        return {"experiments": []}
    page = backend.search_experiments(
        parse_view_type(body.view_type), body.max_results, filter_string, body.order_by, body.page_token
    )
    out: dict[str, Any] = {"experiments": [experiment_json(e) for e in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


@router.post("/experiments/search")
def search_experiments(body: SearchExperiments, request: Request, backend: BackendDep) -> dict[str, Any]:
    return _search(body, request, backend)


@router.get("/experiments/search")
def search_experiments_get(
    request: Request,
    backend: BackendDep,
    max_results: int = 1000,
    page_token: str | None = None,
    filter: str | None = None,
    order_by: list[str] = Query(default=[]),  # noqa: B008
    view_type: str | None = None,
) -> dict[str, Any]:
    body = SearchExperiments(
        max_results=max_results, page_token=page_token, filter=filter, order_by=order_by, view_type=view_type
    )
    return _search(body, request, backend)


@router.post("/experiments/update")
def update_experiment(body: UpdateExperiment, backend: BackendDep) -> dict[str, Any]:
    if body.new_name:
        backend.rename_experiment(body.experiment_id, body.new_name)
    return {}


@router.post("/experiments/delete")
def delete_experiment(body: ExperimentId, backend: BackendDep) -> dict[str, Any]:
    backend.delete_experiment(body.experiment_id)
    return {}


@router.post("/experiments/restore")
def restore_experiment(body: ExperimentId, backend: BackendDep) -> dict[str, Any]:
    backend.restore_experiment(body.experiment_id)
    return {}


@router.post("/experiments/set-experiment-tag")
def set_experiment_tag(body: ExperimentTag, backend: BackendDep) -> dict[str, Any]:
    backend.set_experiment_tag(body.experiment_id, body.key, body.value)
    return {}


@router.post("/experiments/delete-experiment-tag")
def delete_experiment_tag(body: ExperimentTag, backend: BackendDep) -> dict[str, Any]:
    backend.delete_experiment_tag(body.experiment_id, body.key)
    return {}
