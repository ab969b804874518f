"""MLflow REST 2.0: runs, params, metrics, tags, search."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from flowml.client.local import SqlBackend
from flowml.entities import Dataset, DatasetInput, InputTag, Metric, ModelMetric, Param, RunTag
from flowml.exceptions import InvalidParameterValue
from flowml.server.batch_body import parse_log_batch
from flowml.server.deps import BackendDep
from flowml.server.schemas import (
    CreateRun,
    DeleteTag,
    LogBatch,
    LogInputs,
    LogMetric,
    LogParam,
    RunIdBody,
    SearchRuns,
    SetTag,
    UpdateRun,
    body_schema,
    parse_view_type,
    require_run_id,
)
from flowml.server.wire import fast_json, metric_json, parse_double, run_info_json, run_json

router = APIRouter(tags=["runs"])
#: The hot write route on a router of its own, which app.py includes before every other router:
#: FastAPI tries routers and routes in order (a regex match per route passed, twice), which cost
#: log-batch ~0.3 ms of CPU per request when it sat behind 30 other routes.
hot_router = APIRouter(tags=["runs"])

_MAX_RUNS = 50_000


@router.post("/runs/create")
def create_run(body: CreateRun, backend: BackendDep) -> dict[str, Any]:
    tags = {t.key: t.value for t in body.tags}
    user = body.user_id or tags.get("mlflow.user", "")
    run = backend.create_run(body.experiment_id or "0", user, body.start_time, tags, body.run_name)
    return {"run": run_json(run)}


@router.get("/runs/get")
def get_run(backend: BackendDep, run_id: str | None = None, run_uuid: str | None = None) -> Response:
    found = backend.get_run(require_run_id(run_id, run_uuid))
    return fast_json({"run": run_json(found)})


@router.post("/runs/update")
def update_run(body: UpdateRun, backend: BackendDep) -> dict[str, Any]:
    info = backend.update_run_info(body.rid(), body.status, body.end_time, body.run_name)
    return {"run_info": run_info_json(info)}


@router.post("/runs/delete")
def delete_run(body: RunIdBody, backend: BackendDep) -> dict[str, Any]:
    backend.delete_run(body.rid())
    return {}


@router.post("/runs/restore")
def restore_run(body: RunIdBody, backend: BackendDep) -> dict[str, Any]:
    backend.restore_run(body.rid())
    return {}


@router.post("/runs/log-metric")
def log_metric(body: LogMetric, backend: BackendDep) -> dict[str, Any]:
    rid, value = body.rid(), parse_double(body.value)
    model_points = []
    if body.model_id:  # MLflow 3: the point is also a metric of that logged model
        model_points.append(
            ModelMetric(
                body.key,
                value,
                body.timestamp,
                body.step,
                body.model_id,
                rid,
                body.dataset_name,
                body.dataset_digest,
            )
        )
    backend.log_batch(rid, [Metric(body.key, value, body.timestamp, body.step)], [], [], model_points)
    return {}


@router.post("/runs/log-parameter")
def log_param(body: LogParam, backend: BackendDep) -> dict[str, Any]:
    backend.log_batch(body.rid(), [], [Param(body.key, str(body.value))], [])
    return {}


@router.post("/runs/set-tag")
def set_tag(body: SetTag, backend: BackendDep) -> dict[str, Any]:
    backend.log_batch(body.rid(), [], [], [RunTag(body.key, str(body.value))])
    return {}


@router.post("/runs/delete-tag")
def delete_tag(body: DeleteTag, backend: BackendDep) -> dict[str, Any]:
    backend.delete_tag(body.rid(), body.key)
    return {}


_EMPTY = b"{}"


@hot_router.post("/runs/log-batch", openapi_extra=body_schema(LogBatch))
async def log_batch(request: Request) -> Response:
    """The hot route: orjson + hand validation (``batch_body``) on the event loop, then the write joins
    the group commit of concurrent requests without a worker thread per request."""
    batch = parse_log_batch(await request.body())
    backend: SqlBackend = request.app.state.backend
    await backend.log_prepared_batch(batch)
    return Response(_EMPTY, media_type="application/json")


@router.post("/runs/log-inputs")
def log_inputs(body: LogInputs, backend: BackendDep) -> dict[str, Any]:
    """Datasets and (MLflow 3) logged models the run used."""
    backend.log_inputs(
        body.rid(),
        [
            DatasetInput(
                Dataset(**item.dataset.model_dump(exclude={"schema_"}), schema=item.dataset.schema_),
                [InputTag(t.key, t.value) for t in item.tags],
            )
            for item in body.datasets
        ],
        [m.model_id for m in body.models],
    )
    return {}


@router.post("/runs/search")
def search_runs(body: SearchRuns, backend: BackendDep) -> Response:
    if not 1 <= body.max_results <= _MAX_RUNS:
        raise InvalidParameterValue(
            f"Invalid value {body.max_results} for parameter 'max_results' supplied. It must be "
            f"between 1 and {_MAX_RUNS}."
        )
    page = backend.search_runs(
        body.experiment_ids,
        body.filter or None,
        parse_view_type(body.run_view_type),
        body.max_results,
        body.order_by,
        body.page_token,
    )
    out: dict[str, Any] = {"runs": [run_json(r) for r in page]}
    if page.token:
        out["next_page_token"] = page.token
    return fast_json(out)


@router.get("/metrics/get-history")
def get_metric_history(
    backend: BackendDep,
    metric_key: str = Query(min_length=1),
    run_id: str | None = None,
    run_uuid: str | None = None,
    max_results: int | None = Query(default=None, ge=1, le=25_000),
    page_token: str | None = None,
) -> Response:
    rid = require_run_id(run_id, run_uuid)
    # Unbounded history requests are capped per page (MLflow's OOM #23702); clients page on.
    page = backend.get_metric_history(rid, metric_key, max_results or 25_000, page_token)
    out: dict[str, Any] = {"metrics": [metric_json(m) for m in page]}
    if page.token:
        out["next_page_token"] = page.token
    return fast_json(out)
