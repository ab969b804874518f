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

import functools
import logging
import operator
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Double,
    Select,
    Table,
    and_,
    case,
    exists,
    false,
    func,
    literal_column,
    select,
    true,
    union_all,
)
from sqlalchemy import cast as cast_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Join

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
    "run_search_statement",
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
_KV_TABLES = {Entity.METRIC: "latest_metrics", Entity.PARAM: "params", Entity.TAG: "run_tags"}
# Ranks of a metric sort key: real values first (either direction), then NaN, then a missing key.
_REAL, _NAN, _MISSING = 0, 1, 2
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


@functools.lru_cache(maxsize=256)
def _alias(table: str, name: str) -> Any:
    """A named alias of ``table``, built once (its column collection costs ~0.1 ms to build)."""
    return _table(table).alias(name)


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
    return _key_value_exists(ops, _table(_KV_TABLES[key.entity]), runs.c.run_id, "run_id", clause)


def _run_sort(
    ops: StringOps, orders: Sequence[OrderBy], *, base: Any = None, offset: int = 0
) -> tuple[list[SortPart], Any]:
    """Sort parts for ``orders`` + the default tie-breaks, and the FROM clause with its joins.

    ``base`` is the FROM clause to extend (``runs`` by default); ``offset`` numbers the join aliases.
    """
    runs = _table("runs")
    keys = {o.key for o in orders}
    full = list(orders)
    if _START_TIME not in keys:
        full.append(OrderBy(_START_TIME, ascending=False))
    if _RUN_ID not in keys:
        full.append(OrderBy(_RUN_ID, ascending=True))
    parts: list[SortPart] = []
    from_: Any = runs if base is None else base
    for i, order in enumerate(full, start=offset):
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
        joined = _alias(_KV_TABLES[key.entity], f"sort_{i}")
        from_ = from_.outerjoin(joined, and_(joined.c.run_id == runs.c.run_id, joined.c.key == key.name))
        if key.entity is Entity.METRIC:
            rank = case((joined.c.run_id.is_(None), _MISSING), (joined.c.is_nan == true(), _NAN), else_=_REAL)
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
    search = _build_run_search(
        session.get_bind().dialect.name,
        experiment_ids,
        filter_string,
        view_type,
        max_results,
        order_by,
        page_token,
    )
    if search is None:
        return [], None
    stmt, fingerprint, parts = search
    return _page(session, stmt, fingerprint, parts, max_results)


def run_search_statement(
    dialect: str,
    experiment_ids: Sequence[int],
    filter_string: str | None,
    view_type: ViewType,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None = None,
) -> Select[Any] | None:
    """The one SQL statement :func:`search_run_ids` runs for this page (for EXPLAIN and tests)."""
    search = _build_run_search(
        dialect, experiment_ids, filter_string, view_type, max_results, order_by, page_token
    )
    return None if search is None else search[0]


def _build_run_search(
    dialect: str,
    experiment_ids: Sequence[int],
    filter_string: str | None,
    view_type: ViewType,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> tuple[Select[Any], str, list[SortPart]] | None:
    _check_max_results(max_results, SEARCH_MAX_RESULTS_THRESHOLD)
    parsed = parse_filter(filter_string, SearchKind.RUNS)
    orders = parse_order_by(order_by, SearchKind.RUNS)
    stages = _view_stages(view_type)
    ops = StringOps(dialect)
    parts, from_ = _run_sort(ops, orders)
    exp_ids = _experiment_ids(experiment_ids)
    fingerprint = query_fingerprint(
        "runs", exp_ids, stages, parsed.to_string(), [o.to_string() for o in orders]
    )
    cursor = decode_page_token(page_token, fingerprint, parts) if page_token else None
    if not exp_ids:
        return None
    runs = _table("runs")
    conditions: list[ColumnElement[bool]] = [
        runs.c.experiment_id.in_(exp_ids),
        runs.c.lifecycle_stage.in_(stages),
    ]
    conditions += [_run_condition(ops, clause) for clause in parsed.clauses]
    if orders and orders[0].key.entity is Entity.METRIC and not _pins_run_ids(parsed.clauses):
        stmt = _metric_first_page_query(ops, orders, conditions, cursor, max_results)
        return stmt, fingerprint, parts
    if cursor is not None:
        conditions.append(after_cursor(parts, cursor))
    return _page_query(runs.c.run_id, from_, conditions, parts, max_results), fingerprint, parts


def _pins_run_ids(clauses: Sequence[Comparison]) -> bool:
    """``run_id = x`` / ``run_id IN (...)``: a handful of runs, cheaper to sort than to seek."""
    return any(c.key == _RUN_ID and c.comparator in (Comparator.EQ, Comparator.IN) for c in clauses)


def _metric_first_page_query(
    ops: StringOps,
    orders: Sequence[OrderBy],
    conditions: list[ColumnElement[bool]],
    cursor: Sequence[Any] | None,
    max_results: int,
) -> Select[Any]:
    """A page ordered first by a metric, read in index order instead of sorting every run.

    The metric's sort key is (rank, value, rest...), and each rank is one segment with its own
    ``ORDER BY ... LIMIT``:

    * real values: ``latest_metrics`` rows of the key in ``ix_latest_metrics_key_value`` order
      (so the top-N is read, not sorted), joined back to ``runs`` for the run conditions;
    * NaN values: the same index at ``value = 0`` (how NaN is stored) with ``is_nan``;
    * missing key: ``runs`` in ``ix_runs_experiment_start`` order with ``NOT EXISTS`` the key.

    The segments are ``UNION ALL``-ed under one ``ORDER BY ... LIMIT``. A later segment's LIMIT
    is what the earlier ones left of the page (each earlier segment is a materialised CTE and
    the LIMIT subtracts their row counts); both SQLite and PostgreSQL skip a scan whose LIMIT is
    0 before reading a row, so a page that the real values fill never scans for NaN or missing
    keys. (A constant ``WHERE`` guard would not do: SQLite re-tests it per row of the scan.)
    Segments wholly before the page token's rank are left out.
    """
    runs = _table("runs")
    first = orders[0]
    name, asc = first.key.name, first.ascending
    limit = max_results + 1
    start_rank = _REAL if cursor is None else int(cursor[0])

    def rest_of(base: Any) -> tuple[list[SortPart], Any]:
        return _run_sort(ops, orders[1:], base=base, offset=1)

    def arm(
        rank: int,
        from_: Any,
        value: ColumnElement[Any],
        where: list[ColumnElement[bool]],
        value_order: SortPart | None,
        rest: list[SortPart],
    ) -> Select[Any]:
        where = [*conditions, *where]
        if cursor is not None and rank == start_rank:
            if value_order is not None:
                where.append(after_cursor([value_order, *rest], cursor[1:]))
            else:  # within the NaN / missing segment the value part is a constant
                where.append(after_cursor(rest, cursor[2:]))
        ordering = [p.order() for p in ([value_order] if value_order else []) + rest]
        columns = [
            runs.c.run_id,
            literal_column(str(rank), BigInteger).label("sort_key_0"),
            value.label("sort_key_1"),
            *(p.expr.label(f"sort_key_{i}") for i, p in enumerate(rest, start=2)),
        ]
        return (
            select(*columns).select_from(from_).where(and_(true(), *where)).order_by(*ordering).limit(limit)
        )

    arms: list[Select[Any]] = []
    zero = cast_(literal_column("0.0"), Double)
    if start_rank <= _REAL:
        lm = _alias("latest_metrics", "sort_0")
        rest, from_ = rest_of(lm.join(runs, runs.c.run_id == lm.c.run_id))
        arms.append(
            arm(
                _REAL,
                from_,
                lm.c.value,
                [lm.c.key == name, lm.c.is_nan == false()],
                SortPart(lm.c.value, asc, "float"),
                rest,
            )
        )
    if start_rank <= _NAN:
        lm = _alias("latest_metrics", "sort_0")
        rest, from_ = rest_of(_DrivingJoin(lm, runs, runs.c.run_id == lm.c.run_id))
        nan_rows = [lm.c.key == name, lm.c.value == 0.0, lm.c.is_nan == true()]
        arms.append(arm(_NAN, from_, zero, nan_rows, None, rest))
    lm = _alias("latest_metrics", "has_0")
    rest, from_ = rest_of(None)
    missing = ~exists().where(lm.c.run_id == runs.c.run_id, lm.c.key == name)
    arms.append(arm(_MISSING, from_, zero, [missing], None, rest))

    if len(arms) == 1:
        return arms[0]
    n_parts = 2 + len(rest)
    kinds = ["int", "float", *(p.kind for p in rest)]
    ascending = [True, asc, *(p.ascending for p in rest)]
    earlier: list[Any] = []
    selects: list[Select[Any]] = []
    for k, segment in enumerate(arms):
        if earlier:
            # What is left of the page; LIMIT 0 skips the scan on SQLite and PostgreSQL alike.
            counts = [select(func.count()).select_from(c).scalar_subquery() for c in earlier]
            segment = segment.limit(literal_column(str(limit)) - sum(counts[1:], counts[0]))
        if k < len(arms) - 1:
            cte = segment.cte(f"segment_{k}").prefix_with("MATERIALIZED")
            earlier.append(cte)
            selects.append(select(*cte.c))
        else:
            sub = segment.subquery(f"segment_{k}")
            selects.append(select(*sub.c))
    page = union_all(*selects).subquery("page")
    ordering = []
    for i in range(n_parts):
        col: ColumnElement[Any] = page.c[f"sort_key_{i}"]
        if kinds[i] == "str":
            col = ops.text(col)
        ordering.append(col.asc() if ascending[i] else col.desc())
    return select(*page.c).order_by(*ordering).limit(limit)


class _DrivingJoin(Join):
    """An inner join whose left side drives the loop: ``CROSS JOIN ... ON`` on SQLite.

    SQLite never reorders the tables of a ``CROSS JOIN``; without it, lacking statistics, it
    prefers scanning ``runs`` in ``start_time`` order (to skip a sort) and probing each run for a
    NaN metric, which reads every run instead of the few NaN index entries.
    """

    inherit_cache = True


@compiles(_DrivingJoin, "sqlite")
def _compile_driving_join(element: _DrivingJoin, compiler: Any, **kw: Any) -> str:
    rendered = str(compiler.visit_join(element, **kw))
    head, sep, tail = rendered.partition(" JOIN ")  # the left side is a plain (aliased) table
    return f"{head} CROSS JOIN {tail}" if sep else rendered


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
