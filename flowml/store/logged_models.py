"""MLflow 3 logged models (``log_model`` registers one, uploads its files, then finalizes it).

Search supports MLflow's filter grammar over name, model_id, source_run_id, status, model_type,
timestamps and tags (AND-joined), ordered by creation time (newest first) or the given keys, with
offset page tokens (logged models per experiment are few).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, false, insert, or_, select, true
from sqlalchemy.orm import Session

from flowml.entities import LifecycleStage, LoggedModel, PagedList
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.search import Comparator, Entity, SearchKind, parse_filter, parse_order_by
from flowml.store.tables import (
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
    "create_logged_model",
    "delete_logged_model",
    "delete_logged_model_tag",
    "finalize_logged_model",
    "get_logged_model",
    "log_logged_model_params",
    "log_outputs",
    "run_outputs",
    "search_logged_models",
    "set_logged_model_tags",
]

STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")

_M = table_of(LoggedModelRow)
_TAGS = table_of(LoggedModelTagRow)
_PARAMS = table_of(LoggedModelParamRow)
_OUTPUTS = table_of(RunOutputRow)
_COLUMNS = {
    "name": _M.c.name,
    "model_id": _M.c.model_id,
    "source_run_id": _M.c.source_run_id,
    "status": _M.c.status,
    "model_type": _M.c.model_type,
    "creation_timestamp": _M.c.creation_timestamp_ms,
    "last_updated_timestamp": _M.c.last_updated_timestamp_ms,
}


def _row(session: Session, model_id: str) -> LoggedModelRow:
    row = session.get(LoggedModelRow, model_id)
    if row is None or row.lifecycle_stage != LifecycleStage.ACTIVE:
        raise ResourceDoesNotExist(f"Logged model with ID '{model_id}' not found.")
    return row


def _load(session: Session, rows: Sequence[LoggedModelRow]) -> list[LoggedModel]:
    ids = [r.model_id for r in rows]
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    params: dict[str, dict[str, str]] = {i: {} for i in ids}
    for table, target in ((_TAGS, tags), (_PARAMS, params)):
        for model_id, key, value in session.execute(
            select(table.c.model_id, table.c.key, table.c.value).where(table.c.model_id.in_(ids))
        ):
            target[model_id][key] = value
    return [
        LoggedModel(
            model_id=r.model_id,
            experiment_id=str(r.experiment_id),
            name=r.name,
            artifact_location=r.artifact_location,
            status=r.status,
            creation_timestamp=r.creation_timestamp_ms,
            last_updated_timestamp=r.last_updated_timestamp_ms,
            model_type=r.model_type,
            source_run_id=r.source_run_id,
            status_message=r.status_message,
            tags=tags[r.model_id],
            params=params[r.model_id],
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
        name=name or model_id,
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
    return _load(session, [row])[0]


def get_logged_model(session: Session, model_id: str) -> LoggedModel:
    return _load(session, [_row(session, model_id)])[0]


def finalize_logged_model(session: Session, model_id: str, status: str) -> LoggedModel:
    if status not in STATUSES:
        raise InvalidParameterValue(f"Invalid logged model status {status!r}")
    row = _row(session, model_id)
    row.status = status
    row.last_updated_timestamp_ms = now_ms()
    return _load(session, [row])[0]


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


def run_outputs(session: Session, run_id: str) -> list[tuple[str, int]]:
    """``(model_id, step)`` of the logged models run ``run_id`` produced (its MLflow 3 outputs)."""
    rows = session.execute(
        select(_OUTPUTS.c.model_id, _OUTPUTS.c.step)
        .where(_OUTPUTS.c.run_id == run_id)
        .order_by(_OUTPUTS.c.step, _OUTPUTS.c.model_id)
    ).all()
    return [(model_id, int(step)) for model_id, step in rows]


def _clause(comparison: Any) -> ColumnElement[bool]:
    op, value = comparison.comparator, comparison.value
    if comparison.key.entity is Entity.TAG:
        column = _TAGS.c.value
        match = _compare(column, op, value)
        return exists().where(_TAGS.c.model_id == _M.c.model_id, _TAGS.c.key == comparison.key.name, match)
    return _compare(_COLUMNS[comparison.key.name], op, value)


def _compare(column: Any, op: Comparator, value: Any) -> ColumnElement[bool]:
    result: ColumnElement[bool]
    if op is Comparator.EQ:
        result = column == value
    elif op is Comparator.NE:
        result = column != value
    elif op is Comparator.LT:
        result = column < value
    elif op is Comparator.LE:
        result = column <= value
    elif op is Comparator.GT:
        result = column > value
    elif op is Comparator.GE:
        result = column >= value
    elif op is Comparator.LIKE:
        result = column.like(value)
    elif op is Comparator.ILIKE:
        result = column.ilike(value)
    elif op is Comparator.IN:
        result = column.in_(list(value)) if value else false()
    elif op is Comparator.NOT_IN:
        result = column.not_in(list(value)) if value else true()
    else:  # IS NULL forms are not offered for logged models
        raise InvalidParameterValue(f"Unsupported comparator {op.value!r} for logged models")
    return result


def search_logged_models(
    session: Session,
    experiment_ids: Sequence[str],
    filter_string: str | None = None,
    max_results: int | None = None,
    order_by: Sequence[str] | None = None,
    page_token: str | None = None,
) -> PagedList[LoggedModel]:
    limit = max_results or 100
    if not 1 <= limit <= 1000:
        raise InvalidParameterValue(f"max_results must be between 1 and 1000, got {limit}")
    offset = 0
    if page_token:
        try:
            offset = int(json.loads(base64.b64decode(page_token))["offset"])
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidParameterValue(f"Invalid page token {page_token!r}") from exc
    ids = [int(e) for e in experiment_ids if str(e).isdigit()]
    where = [_M.c.experiment_id.in_(ids), _M.c.lifecycle_stage == LifecycleStage.ACTIVE]
    where += [_clause(c) for c in parse_filter(filter_string, SearchKind.LOGGED_MODELS).clauses]
    ordering = [
        (_COLUMNS[o.key.name].asc() if o.ascending else _COLUMNS[o.key.name].desc())
        for o in parse_order_by(order_by, SearchKind.LOGGED_MODELS)
    ] or [_M.c.creation_timestamp_ms.desc()]
    query = (
        select(LoggedModelRow)
        .where(and_(*where) if where else or_(true()))
        .order_by(*ordering, _M.c.model_id)
        .offset(offset)
        .limit(limit + 1)
    )
    rows = list(session.execute(query).scalars())
    token = None
    if len(rows) > limit:
        rows = rows[:limit]
        token = base64.b64encode(json.dumps({"offset": offset + limit}).encode()).decode()
    return PagedList(_load(session, rows), token)
