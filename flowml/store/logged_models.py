"""MLflow 3 logged models (``log_model`` registers one, uploads its files, then finalizes it), their
tags, params and metric points (metrics a run logs with a ``model_id``), and the runs' outputs.

Search is in :mod:`flowml.store._logged_model_search`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from flowml.entities import LifecycleStage, LoggedModel, LoggedModelStatus, ModelMetric, PagedList
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.store._logged_model_search import ModelOrder, search_page
from flowml.store._names import random_run_name
from flowml.store.tables import (
    LoggedModelMetricRow,
    LoggedModelParamRow,
    LoggedModelRow,
    LoggedModelTagRow,
    RunOutputRow,
    table_of,
)
from flowml.store.tracking import _experiment_row, get_run_row, join_uri, now_ms
from flowml.validation import validate_key

__all__ = [
    "STATUSES",
    "ModelOrder",
    "create_logged_model",
    "delete_logged_model",
    "delete_logged_model_tag",
    "finalize_logged_model",
    "get_logged_model",
    "load_models",
    "log_logged_model_params",
    "log_outputs",
    "run_model_location",
    "run_model_locations",
    "search_logged_models",
    "set_logged_model_tags",
]

STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")

_M = table_of(LoggedModelRow)
_TAGS = table_of(LoggedModelTagRow)
_PARAMS = table_of(LoggedModelParamRow)
_METRICS = table_of(LoggedModelMetricRow)
_OUTPUTS = table_of(RunOutputRow)
_NAN = float("nan")


def _row(session: Session, model_id: str) -> LoggedModelRow:
    row = session.get(LoggedModelRow, model_id)
    if row is None or row.lifecycle_stage != LifecycleStage.ACTIVE:
        raise ResourceDoesNotExist(f"Logged model with ID '{model_id}' not found.")
    return row


def load_models(session: Session, rows: Sequence[LoggedModelRow]) -> list[LoggedModel]:
    """The entities of ``rows`` with their tags, params and metric points (three statements)."""
    ids = [r.model_id for r in rows]
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    params: dict[str, dict[str, str]] = {i: {} for i in ids}
    for table, target in ((_TAGS, tags), (_PARAMS, params)):
        for model_id, key, value in session.execute(
            select(table.c.model_id, table.c.key, table.c.value).where(table.c.model_id.in_(ids))
        ):
            target[model_id][key] = value
    metrics: dict[str, list[ModelMetric]] = {i: [] for i in ids}
    m = _METRICS.c
    columns = (m.model_id, m.key, m.step, m.timestamp, m.run_id, m.dataset_name, m.dataset_digest)
    for point in session.execute(
        select(*columns, m.value, m.is_nan).where(m.model_id.in_(ids)).order_by(*columns, m.value)
    ):
        metrics[point.model_id].append(
            ModelMetric(
                point.key,
                _NAN if point.is_nan else point.value,
                point.timestamp,
                point.step,
                point.model_id,
                point.run_id,
                point.dataset_name or None,
                point.dataset_digest or None,
            )
        )
    return [
        LoggedModel(
            model_id=r.model_id,
            experiment_id=str(r.experiment_id),
            name=r.name,
            artifact_location=r.artifact_location,
            status=LoggedModelStatus.parse(r.status),
            creation_timestamp=r.creation_timestamp_ms,
            last_updated_timestamp=r.last_updated_timestamp_ms,
            model_type=r.model_type,
            source_run_id=r.source_run_id,
            status_message=r.status_message,
            tags=tags[r.model_id],
            params=params[r.model_id],
            metrics=tuple(metrics[r.model_id]),
        )
        for r in rows
    ]


def _put(session: Session, table: Any, model_id: str, items: Mapping[str, str]) -> None:
    for key in items:
        validate_key(key, "tag")
    if items:
        session.execute(delete(table).where(table.c.model_id == model_id, table.c.key.in_(list(items))))
        session.execute(
            insert(table), [{"model_id": model_id, "key": k, "value": v} for k, v in items.items()]
        )


def create_logged_model(
    session: Session,
    experiment_id: str,
    name: str | None = None,
    source_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    model_type: str | None = None,
) -> LoggedModel:
    experiment = _experiment_row(session, experiment_id)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameterValue(f"The experiment {experiment_id} must be in the 'active' state.")
    if source_run_id:
        get_run_row(session, source_run_id)
    model_id = f"m-{uuid.uuid4().hex}"
    ts = now_ms()
    row = LoggedModelRow(
        model_id=model_id,
        experiment_id=experiment.experiment_id,  # type: ignore[arg-type]
        name=name or random_run_name(),  # as MLflow: a readable random name
        artifact_location=join_uri(experiment.artifact_location, "models", model_id, "artifacts"),
        status="LOGGED_MODEL_PENDING",
        model_type=model_type,
        source_run_id=source_run_id or None,
        creation_timestamp_ms=ts,
        last_updated_timestamp_ms=ts,
    )
    session.add(row)
    session.flush()
    _put(session, _TAGS, model_id, dict(tags or {}))
    _put(session, _PARAMS, model_id, dict(params or {}))
    return load_models(session, [row])[0]


def get_logged_model(session: Session, model_id: str) -> LoggedModel:
    return load_models(session, [_row(session, model_id)])[0]


def finalize_logged_model(session: Session, model_id: str, status: str) -> LoggedModel:
    """``status``: MLflow's name (``READY``/``FAILED``) or the protobuf one (what the REST API carries)."""
    try:
        proto = LoggedModelStatus.parse(status).to_proto()
    except ValueError:
        proto = ""
    if proto not in STATUSES:
        raise InvalidParameterValue(f"Invalid logged model status {status!r}")
    row = _row(session, model_id)
    row.status = proto
    row.last_updated_timestamp_ms = now_ms()
    return load_models(session, [row])[0]


def delete_logged_model(session: Session, model_id: str) -> None:
    row = _row(session, model_id)
    row.lifecycle_stage = LifecycleStage.DELETED
    row.last_updated_timestamp_ms = now_ms()


def set_logged_model_tags(session: Session, model_id: str, tags: Mapping[str, str]) -> None:
    _row(session, model_id).last_updated_timestamp_ms = now_ms()
    _put(session, _TAGS, model_id, tags)


def delete_logged_model_tag(session: Session, model_id: str, key: str) -> None:
    _row(session, model_id)
    result = session.execute(delete(_TAGS).where(_TAGS.c.model_id == model_id, _TAGS.c.key == key))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise ResourceDoesNotExist(f"No tag with key {key!r} on logged model {model_id}")


def log_logged_model_params(session: Session, model_id: str, params: Mapping[str, str]) -> None:
    _row(session, model_id)
    _put(session, _PARAMS, model_id, params)


def log_outputs(session: Session, run_id: str, models: Sequence[tuple[str, int]]) -> None:
    get_run_row(session, run_id, for_write=True)
    for model_id, step in models:
        _row(session, model_id)
        session.execute(delete(_OUTPUTS).where(_OUTPUTS.c.run_id == run_id, _OUTPUTS.c.model_id == model_id))
        session.execute(insert(_OUTPUTS).values(run_id=run_id, model_id=model_id, step=step))


def run_model_location(session: Session, run_id: str, name: str) -> str | None:
    """The artifact location of the run's (active) logged model called ``name``, the newest."""
    location: str | None = session.execute(
        select(_M.c.artifact_location)
        .where(_M.c.source_run_id == run_id, _M.c.name == name, _M.c.lifecycle_stage == LifecycleStage.ACTIVE)
        .order_by(_M.c.creation_timestamp_ms.desc())
        .limit(1)
    ).scalar()
    return location


def run_model_locations(session: Session, run_id: str) -> list[str]:
    """The artifact locations of the run's (active) logged models."""
    return list(
        session.execute(
            select(_M.c.artifact_location).where(
                _M.c.source_run_id == run_id, _M.c.lifecycle_stage == LifecycleStage.ACTIVE
            )
        ).scalars()
    )


def search_logged_models(
    session: Session,
    experiment_ids: Sequence[str],
    filter_string: str | None = None,
    max_results: int | None = None,
    order_by: Sequence[str | ModelOrder] | None = None,
    page_token: str | None = None,
    datasets: Sequence[Mapping[str, str]] | None = None,
) -> PagedList[LoggedModel]:
    """One page of logged models (see :mod:`flowml.store._logged_model_search`)."""
    rows, token = search_page(
        session, experiment_ids, filter_string, max_results, order_by, page_token, datasets
    )
    return PagedList(load_models(session, rows), token)
