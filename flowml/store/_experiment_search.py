"""Experiment search: the filter grammar over ``experiments`` / ``experiment_tags``, keyset pages.

Default order ``creation_time DESC, experiment_id ASC``; ties broken by ``experiment_id DESC``
when ordered by something else (MLflow's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from flowml.entities import ViewType
from flowml.search import Comparison, Entity, Key, OrderBy, SearchKind, parse_filter, parse_order_by
from flowml.store._filters_sql import (
    SortPart,
    StringOps,
    after_cursor,
    decode_page_token,
    query_fingerprint,
    table,
)
from flowml.store._search_common import (
    check_max_results,
    compare,
    fetch_page,
    key_value_exists,
    page_query,
    view_stages,
)

__all__ = ["EXPERIMENTS_MAX_RESULTS_THRESHOLD", "search_experiment_ids"]

EXPERIMENTS_MAX_RESULTS_THRESHOLD = 50_000

_EXPERIMENT_ID = Key(Entity.ATTRIBUTE, "experiment_id")
_DEFAULT_EXPERIMENT_ORDER = (
    OrderBy(Key(Entity.ATTRIBUTE, "creation_time"), ascending=False),
    OrderBy(_EXPERIMENT_ID, ascending=True),
)


def _experiment_condition(ops: StringOps, clause: Comparison) -> ColumnElement[bool]:
    experiments = table("experiments")
    key = clause.key
    if key.entity is Entity.TAG:
        return key_value_exists(
            ops, table("experiment_tags"), experiments.c.experiment_id, "experiment_id", clause
        )
    value: Any = clause.value
    if key.name == "experiment_id":
        value = tuple(int(v) for v in value) if isinstance(value, tuple) else int(str(value))
    return compare(ops, experiments.c[key.name], clause.comparator, value, text=key.name == "name")


def _experiment_sort(ops: StringOps, orders: Sequence[OrderBy]) -> list[SortPart]:
    experiments = table("experiments")
    full = list(orders) or list(_DEFAULT_EXPERIMENT_ORDER)
    if _EXPERIMENT_ID not in {o.key for o in full}:
        full.append(OrderBy(_EXPERIMENT_ID, ascending=False))  # MLflow's tie-break
    parts = []
    for order in full:
        col = experiments.c[order.key.name]
        if order.key.name == "name":
            parts.append(SortPart(ops.text(col), order.ascending, "str"))
        else:
            parts.append(SortPart(col, order.ascending, "int"))
    return parts


def search_experiment_ids(
    session: Session,
    view_type: ViewType,
    max_results: int,
    filter_string: str | None,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> tuple[list[int], str | None]:
    """One page of experiment ids (default order ``creation_time DESC, experiment_id ASC``)."""
    check_max_results(max_results, EXPERIMENTS_MAX_RESULTS_THRESHOLD)
    parsed = parse_filter(filter_string, SearchKind.EXPERIMENTS)
    orders = parse_order_by(order_by, SearchKind.EXPERIMENTS)
    stages = view_stages(view_type)
    ops = StringOps(session.get_bind().dialect.name)
    parts = _experiment_sort(ops, orders)
    fingerprint = query_fingerprint(
        "experiments", stages, parsed.to_string(), [o.to_string() for o in orders]
    )
    cursor = decode_page_token(page_token, fingerprint, parts) if page_token else None
    experiments = table("experiments")
    conditions: list[ColumnElement[bool]] = [experiments.c.lifecycle_stage.in_(stages)]
    conditions += [_experiment_condition(ops, clause) for clause in parsed.clauses]
    if cursor is not None:
        conditions.append(after_cursor(parts, cursor))
    stmt = page_query(experiments.c.experiment_id, experiments, conditions, parts, max_results)
    ids, token = fetch_page(session, stmt, fingerprint, parts, max_results)
    return [int(i) for i in ids], token
