"""Searching MLflow 3 logged models: MLflow's filter grammar over their attributes, tags, params and
metrics, the ``datasets`` restriction, and ordering by attributes or a metric's latest value.

As in MLflow: a ``metrics.<key>`` clause matches a model when *any* of its points of that key
compares true (on one of the given datasets, if any; a NaN point only matches ``!=``, as in run
search, where MLflow would have stored it as 0.0); ordering by a metric uses the model's latest
point of that key (newest timestamp, then highest step, then run id), optionally on one dataset, with
models lacking it last. A ``datasets`` entry without a digest matches any digest (MLflow's store;
``mlflow server`` 3.17 passes a null digest there and so matches none). Offset page tokens: logged
models per experiment are few.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, or_, select
from sqlalchemy.orm import Session

from flowml.entities import LifecycleStage
from flowml.exceptions import InvalidParameterValue
from flowml.search import Comparison, Entity, SearchKind, parse_filter, parse_order_by
from flowml.store._filters_sql import StringOps
from flowml.store._search_common import compare, key_value_exists
from flowml.store.tables import (
    LoggedModelMetricRow,
    LoggedModelParamRow,
    LoggedModelRow,
    LoggedModelTagRow,
    table_of,
)

__all__ = ["ModelOrder", "search_page"]

_M = table_of(LoggedModelRow)
_TAGS = table_of(LoggedModelTagRow)
_PARAMS = table_of(LoggedModelParamRow)
_METRICS = table_of(LoggedModelMetricRow)
_COLUMNS = {
    "name": _M.c.name,
    "model_id": _M.c.model_id,
    "source_run_id": _M.c.source_run_id,
    "status": _M.c.status,
    "model_type": _M.c.model_type,
    "creation_timestamp": _M.c.creation_timestamp_ms,
    "last_updated_timestamp": _M.c.last_updated_timestamp_ms,
}


@dataclass(frozen=True, slots=True)
class ModelOrder:
    """One ``order_by`` entry in MLflow's object form (``field_name``, ``ascending`` and, for a
    metric, the dataset whose points count)."""

    field_name: str
    ascending: bool = True
    dataset_name: str | None = None
    dataset_digest: str | None = None


def _check_datasets(datasets: Sequence[Mapping[str, str]]) -> None:
    for dataset in datasets:
        if not dataset.get("dataset_name"):
            raise InvalidParameterValue("`dataset_name` in the `datasets` clause must be specified.")


def _on_datasets(points: Any, datasets: Sequence[Mapping[str, str]]) -> ColumnElement[bool] | None:
    """Rows of ``points`` (the metrics table or an alias) on any of ``datasets`` (each a name and,
    optionally, a digest); None when no datasets are given."""
    if not datasets:
        return None
    options = []
    for dataset in datasets:
        name, digest = dataset["dataset_name"], dataset.get("dataset_digest")
        on_name = points.c.dataset_name == name
        options.append(and_(on_name, points.c.dataset_digest == digest) if digest else on_name)
    return or_(*options)


def _clause(
    ops: StringOps, comparison: Comparison, datasets: Sequence[Mapping[str, str]]
) -> ColumnElement[bool]:
    """One filter clause, with run search's rules (``_search_common``): string comparisons alike on
    both databases, and a NaN point matching ``!=`` only (MLflow would have stored it as 0.0)."""
    entity = comparison.key.entity
    if entity is Entity.METRIC:
        return key_value_exists(
            ops, _METRICS, _M.c.model_id, "model_id", comparison, restrict=lambda t: _on_datasets(t, datasets)
        )
    if entity in (Entity.TAG, Entity.PARAM):
        return key_value_exists(
            ops, _TAGS if entity is Entity.TAG else _PARAMS, _M.c.model_id, "model_id", comparison
        )
    return compare(ops, _COLUMNS[comparison.key.name], comparison.comparator, comparison.value)


def _latest_value(key: str, order: ModelOrder) -> ColumnElement[Any]:
    """The model's latest point of metric ``key`` (on the order's dataset): NULL when it has none,
    or when that point is NaN (so it sorts with the missing ones, last)."""
    latest = _METRICS.alias("latest")
    conditions = [latest.c.model_id == _M.c.model_id, latest.c.key == key]
    if order.dataset_name:
        conditions.append(latest.c.dataset_name == order.dataset_name)
    if order.dataset_digest:
        conditions.append(latest.c.dataset_digest == order.dataset_digest)
    return (
        select(case((latest.c.is_nan == false(), latest.c.value)))
        .where(*conditions)
        .order_by(latest.c.timestamp.desc(), latest.c.step.desc(), latest.c.run_id, latest.c.value.desc())
        .limit(1)
        .scalar_subquery()
    )


def _order_key(entry: str | ModelOrder) -> tuple[Entity, str, bool]:
    """(entity, name, ascending) of an ``order_by`` entry: a string in the search grammar, or
    MLflow's object whose ``field_name`` is ``metrics.<key>`` (taken verbatim) or an attribute."""
    if isinstance(entry, ModelOrder):
        prefix, _, name = entry.field_name.partition(".")
        if prefix == "metrics" and name:
            return Entity.METRIC, name, entry.ascending
        entry = f"`{entry.field_name}` {'ASC' if entry.ascending else 'DESC'}"
    (parsed,) = parse_order_by([entry], SearchKind.LOGGED_MODELS)
    return parsed.key.entity, parsed.key.name, parsed.ascending


def _ordering(orders: Sequence[str | ModelOrder]) -> list[ColumnElement[Any]]:
    """ORDER BY terms, missing values last in both directions, then newest first and by id."""
    terms: list[ColumnElement[Any]] = []
    has_created = False
    for entry in orders:
        entity, name, ascending = _order_key(entry)
        column: ColumnElement[Any]
        if entity is Entity.METRIC:
            column = _latest_value(name, entry if isinstance(entry, ModelOrder) else ModelOrder(name))
        else:
            column = _COLUMNS[name]
            has_created = has_created or name == "creation_timestamp"
        terms += [case((column.is_(None), 1), else_=0), column.asc() if ascending else column.desc()]
    if not has_created:
        terms.append(_M.c.creation_timestamp_ms.desc())
    return [*terms, _M.c.model_id]


def search_page(
    session: Session,
    experiment_ids: Sequence[str],
    filter_string: str | None,
    max_results: int | None,
    order_by: Sequence[str | ModelOrder] | None,
    page_token: str | None,
    datasets: Sequence[Mapping[str, str]] | None,
) -> tuple[list[LoggedModelRow], str | None]:
    """Rows of the active logged models of ``experiment_ids`` matching ``filter_string`` (and, with
    ``datasets``, having points on one of them): one page of ``max_results`` (default 100, at most
    1000) and the next page's token."""
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
    datasets = datasets or ()
    _check_datasets(datasets)
    ops = StringOps(session.get_bind().dialect.name)
    clauses = parse_filter(filter_string, SearchKind.LOGGED_MODELS).clauses
    where = [_M.c.experiment_id.in_(ids), _M.c.lifecycle_stage == LifecycleStage.ACTIVE]
    where += [_clause(ops, c, datasets) for c in clauses]
    on_datasets = _on_datasets(_METRICS, datasets)
    if on_datasets is not None and not any(c.key.entity is Entity.METRIC for c in clauses):
        where.append(exists().where(_METRICS.c.model_id == _M.c.model_id, on_datasets))
    query = (
        select(LoggedModelRow)
        .where(*where)
        .order_by(*_ordering(order_by or ()))
        .offset(offset)
        .limit(limit + 1)
    )
    rows = list(session.execute(query).scalars())
    token = None
    if len(rows) > limit:
        rows = rows[:limit]
        token = base64.b64encode(json.dumps({"offset": offset + limit}).encode()).decode()
    return rows, token
