"""Search: a parsed filter and order_by (``flowml.search``) compiled to ONE SQL query per page.

Runs are selected from ``runs`` with

* a correlated ``EXISTS`` per metric / param / tag clause (``latest_metrics`` for metrics), so a
  run lacking the key never matches, not even ``!=``; ``IS [NOT] NULL`` is ``[NOT] EXISTS``;
* NaN metrics (stored as ``value=0, is_nan=true``) match ``!=`` only;
* a ``LEFT JOIN`` on ``(run_id, key)`` per metric / param / tag sort key (the key is the primary
  key, so a join never multiplies rows); real values sort first in either direction, then NaN,
  then missing; missing params / tags and a NULL ``end_time`` sort last;
* ``ORDER BY`` the sort key + ``start_time DESC`` (unless ordered on it) + ``run_id ASC``, and
  ``LIMIT max_results + 1`` to learn whether another page exists.

Page tokens are keyset cursors (see :mod:`flowml.store._filters_sql`): the next page is "rows
strictly after the last row's full sort key", so paging visits every run exactly once and in order
even while runs are inserted or deleted between pages (no offset drift). A token only works for
the same experiments, filter, order_by and view type.

Experiments work the same way over ``experiments`` / ``experiment_tags``.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, and_, case, exists, func, select, true
from sqlalchemy.orm import Session

from flowml.entities import LifecycleStage, ViewType
from flowml.exceptions import InvalidParameterValue
from flowml.search import (
    Comparator,
    Comparison,
    Entity,
    Key,
    OrderBy,
    SearchKind,
    parse_filter,
    parse_order_by,
)
from flowml.store._filters_sql import (
    SortPart,
    StringOps,
    after_cursor,
    decode_page_token,
    encode_page_token,
    query_fingerprint,
)
from flowml.store.tables import metadata

__all__ = [
    "EXPERIMENTS_MAX_RESULTS_THRESHOLD",
    "SEARCH_MAX_RESULTS_DEFAULT",
    "SEARCH_MAX_RESULTS_THRESHOLD",
    "search_experiment_ids",
    "search_run_ids",
]

logger = logging.getLogger(__name__)

SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_THRESHOLD = 50_000
EXPERIMENTS_MAX_RESULTS_THRESHOLD = 50_000

_NUMERIC_RUN_ATTRIBUTES = frozenset({"start_time", "end_time"})
_START_TIME = Key(Entity.ATTRIBUTE, "start_time")
_RUN_ID = Key(Entity.ATTRIBUTE, "run_id")
_EXPERIMENT_ID = Key(Entity.ATTRIBUTE, "experiment_id")
_DEFAULT_EXPERIMENT_ORDER = (
    OrderBy(Key(Entity.ATTRIBUTE, "creation_time"), ascending=False),
    OrderBy(_EXPERIMENT_ID, ascending=True),
)


_BINARY_OPERATORS: dict[Comparator, Callable[[Any, Any], Any]] = {
    Comparator.EQ: operator.eq,
    Comparator.NE: operator.ne,
    Comparator.LT: operator.lt,
    Comparator.LE: operator.le,
    Comparator.GT: operator.gt,
    Comparator.GE: operator.ge,
}


def _table(name: str) -> Table:
    return metadata.tables[name]


def _view_stages(view_type: ViewType | int) -> tuple[str, ...]:
    try:
        return LifecycleStage.for_view(view_type)
    except ValueError as exc:
        raise InvalidParameterValue(f"Invalid view type {view_type!r}") from exc


def _experiment_ids(experiment_ids: Sequence[int]) -> list[int]:
    try:
        return sorted({int(e) for e in experiment_ids})
    except (TypeError, ValueError) as exc:
        raise InvalidParameterValue(f"Invalid experiment ids {experiment_ids!r}") from exc


def _check_max_results(max_results: int, threshold: int) -> None:
    if not isinstance(max_results, int) or isinstance(max_results, bool) or max_results < 1:
        raise InvalidParameterValue(
            f"Invalid value {max_results!r} for parameter 'max_results' supplied. "
            "It must be a positive integer"
        )
    if max_results > threshold:
        raise InvalidParameterValue(
            "Invalid value for request parameter max_results. "
            f"It must be at most {threshold}, but got value {max_results}"
        )


def _compare(
    ops: StringOps, col: ColumnElement[Any], comp: Comparator, value: Any, *, text: bool = False
) -> ColumnElement[bool]:
    """``col <comp> value`` with flowml's portable string semantics."""
    if comp is Comparator.LIKE:
        return ops.like(col, value)
    if comp is Comparator.ILIKE:
        return ops.ilike(col, value)
    if comp is Comparator.IN:
        return col.in_(list(value))
    if comp is Comparator.NOT_IN:
        return col.not_in(list(value))
    lhs = ops.text(col) if text and comp not in (Comparator.EQ, Comparator.NE) else col
    binary = _BINARY_OPERATORS.get(comp)
    if binary is not None:
        return cast("ColumnElement[bool]", binary(lhs, value))
    raise InvalidParameterValue(f"Comparator {comp.value!r} cannot be used here")


def _key_value_exists(
    ops: StringOps, table: Table, owner: ColumnElement[Any], owner_col: str, clause: Comparison
) -> ColumnElement[bool]:
    """``[NOT] EXISTS`` a (owner, key) row of ``table`` whose value satisfies ``clause``."""
    alias = table.alias()
    conditions: list[ColumnElement[bool]] = [alias.c[owner_col] == owner, alias.c.key == clause.key.name]
    comp = clause.comparator
    if comp is Comparator.IS_NULL:
        return ~exists().where(*conditions)
    if comp is Comparator.IS_NOT_NULL:
        return exists().where(*conditions)
    if clause.key.entity is Entity.METRIC:
        matched = _compare(ops, alias.c.value, comp, float(clause.value))  # type: ignore[arg-type]
        nan = alias.c.is_nan == true()
        # NaN is unequal to everything and comparable to nothing.
        conditions.append(matched | nan if comp is Comparator.NE else matched & ~nan)
    else:
        conditions.append(_compare(ops, alias.c.value, comp, clause.value, text=True))
    return exists().where(*conditions)


# -- runs -------------------------------------------------------------------------------------


def _run_condition(ops: StringOps, clause: Comparison) -> ColumnElement[bool]:
    runs = _table("runs")
    key = clause.key
    if key.entity is Entity.ATTRIBUTE:
        text = key.name not in _NUMERIC_RUN_ATTRIBUTES
        return _compare(ops, runs.c[key.name], clause.comparator, clause.value, text=text)
    table = {Entity.METRIC: "latest_metrics", Entity.PARAM: "params", Entity.TAG: "run_tags"}
    return _key_value_exists(ops, _table(table[key.entity]), runs.c.run_id, "run_id", clause)


def _run_sort(ops: StringOps, orders: Sequence[OrderBy]) -> tuple[list[SortPart], Any]:
    """Sort parts for ``orders`` + the default tie-breaks, and the FROM clause with its joins."""
    runs = _table("runs")
    keys = {o.key for o in orders}
    full = list(orders)
    if _START_TIME not in keys:
        full.append(OrderBy(_START_TIME, ascending=False))
    if _RUN_ID not in keys:
        full.append(OrderBy(_RUN_ID, ascending=True))
    parts: list[SortPart] = []
    from_: Any = runs
    for i, order in enumerate(full):
        key, asc = order.key, order.ascending
        if key.entity is Entity.ATTRIBUTE:
            col = runs.c[key.name]
            if key.name in _NUMERIC_RUN_ATTRIBUTES and not col.nullable:
                parts.append(SortPart(col, asc, "int"))  # plain column: an index can serve it
            elif key.name in _NUMERIC_RUN_ATTRIBUTES:  # NULL (a running run's end_time) sorts last
                parts.append(SortPart(case((col.is_(None), 1), else_=0), True, "int"))
                parts.append(SortPart(func.coalesce(col, 0), asc, "int"))
            else:
                parts.append(SortPart(ops.text(col), asc, "str"))
            continue
        table = {Entity.METRIC: "latest_metrics", Entity.PARAM: "params", Entity.TAG: "run_tags"}
        joined = _table(table[key.entity]).alias(f"sort_{i}")
        from_ = from_.outerjoin(joined, and_(joined.c.run_id == runs.c.run_id, joined.c.key == key.name))
        if key.entity is Entity.METRIC:
            rank = case((joined.c.run_id.is_(None), 2), (joined.c.is_nan == true(), 1), else_=0)
            parts.append(SortPart(rank, True, "int"))
            parts.append(SortPart(func.coalesce(joined.c.value, 0.0), asc, "float"))
        else:
            parts.append(SortPart(case((joined.c.value.is_(None), 1), else_=0), True, "int"))
            parts.append(SortPart(ops.text(func.coalesce(joined.c.value, "")), asc, "str"))
    return parts, from_


def search_run_ids(
    session: Session,
    experiment_ids: Sequence[int],
    filter_string: str | None,
    view_type: ViewType,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> tuple[list[str], str | None]:
    """One page of run ids matching ``filter_string``, in ``order_by`` order, and the next token."""
    _check_max_results(max_results, SEARCH_MAX_RESULTS_THRESHOLD)
    parsed = parse_filter(filter_string, SearchKind.RUNS)
    orders = parse_order_by(order_by, SearchKind.RUNS)
    stages = _view_stages(view_type)
    ops = StringOps(session.get_bind().dialect.name)
    parts, from_ = _run_sort(ops, orders)
    exp_ids = _experiment_ids(experiment_ids)
    fingerprint = query_fingerprint(
        "runs", exp_ids, stages, parsed.to_string(), [o.to_string() for o in orders]
    )
    cursor = decode_page_token(page_token, fingerprint, parts) if page_token else None
    if not exp_ids:
        return [], None
    runs = _table("runs")
    conditions: list[ColumnElement[bool]] = [
        runs.c.experiment_id.in_(exp_ids),
        runs.c.lifecycle_stage.in_(stages),
    ]
    conditions += [_run_condition(ops, clause) for clause in parsed.clauses]
    if cursor is not None:
        conditions.append(after_cursor(parts, cursor))
    stmt = _page_query(runs.c.run_id, from_, conditions, parts, max_results)
    return _page(session, stmt, fingerprint, parts, max_results)


def _page_query(
    id_col: ColumnElement[Any],
    from_: Any,
    conditions: list[ColumnElement[bool]],
    parts: Sequence[SortPart],
    max_results: int,
) -> Select[Any]:
    columns = [p.expr.label(f"sort_key_{i}") for i, p in enumerate(parts)]
    return (
        select(id_col, *columns)
        .select_from(from_)
        .where(and_(true(), *conditions))
        .order_by(*(p.order() for p in parts))
        .limit(max_results + 1)
    )


def _page(
    session: Session, stmt: Select[Any], fingerprint: str, parts: Sequence[SortPart], max_results: int
) -> tuple[list[Any], str | None]:
    rows = session.execute(stmt).all()
    token = None
    if len(rows) > max_results:
        rows = rows[:max_results]
        token = encode_page_token(fingerprint, parts, tuple(rows[-1])[1:])
    logger.debug("search page: %d rows, more=%s", len(rows), token is not None)
    return [row[0] for row in rows], token


# -- experiments ------------------------------------------------------------------------------


def _experiment_condition(ops: StringOps, clause: Comparison) -> ColumnElement[bool]:
    experiments = _table("experiments")
    key = clause.key
    if key.entity is Entity.TAG:
        return _key_value_exists(
            ops, _table("experiment_tags"), experiments.c.experiment_id, "experiment_id", clause
        )
    value: Any = clause.value
    if key.name == "experiment_id":
        value = tuple(int(v) for v in value) if isinstance(value, tuple) else int(str(value))
    return _compare(ops, experiments.c[key.name], clause.comparator, value, text=key.name == "name")


def _experiment_sort(ops: StringOps, orders: Sequence[OrderBy]) -> list[SortPart]:
    experiments = _table("experiments")
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
    _check_max_results(max_results, EXPERIMENTS_MAX_RESULTS_THRESHOLD)
    parsed = parse_filter(filter_string, SearchKind.EXPERIMENTS)
    orders = parse_order_by(order_by, SearchKind.EXPERIMENTS)
    stages = _view_stages(view_type)
    ops = StringOps(session.get_bind().dialect.name)
    parts = _experiment_sort(ops, orders)
    fingerprint = query_fingerprint(
        "experiments", stages, parsed.to_string(), [o.to_string() for o in orders]
    )
    cursor = decode_page_token(page_token, fingerprint, parts) if page_token else None
    experiments = _table("experiments")
    conditions: list[ColumnElement[bool]] = [experiments.c.lifecycle_stage.in_(stages)]
    conditions += [_experiment_condition(ops, clause) for clause in parsed.clauses]
    if cursor is not None:
        conditions.append(after_cursor(parts, cursor))
    stmt = _page_query(experiments.c.experiment_id, experiments, conditions, parts, max_results)
    ids, token = _page(session, stmt, fingerprint, parts, max_results)
    return [int(i) for i in ids], token
