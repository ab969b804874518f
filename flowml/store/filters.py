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

The statement's shape depends on the order and the clauses (the default order with a param
equality walks ``ix_params_experiment_key_value``; a metric first in ``order_by`` reads
``ix_latest_metrics_key_value``, see :mod:`flowml.store._metric_order`). Loading the page's runs
is :func:`flowml.store.run_load.load_runs`. Experiments work the same way over ``experiments`` /
``experiment_tags`` (:mod:`flowml.store._experiment_search`, re-exported here).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, ColumnElement, Select, and_, case, cast, exists, func, true
from sqlalchemy.orm import Session

from flowml.entities import RunInfo, ViewType
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
from flowml.store._experiment_search import EXPERIMENTS_MAX_RESULTS_THRESHOLD, search_experiment_ids
from flowml.store._filters_sql import (
    DrivingJoin,
    SortPart,
    StringOps,
    after_cursor,
    alias,
    decode_page_token,
    query_fingerprint,
    table,
)
from flowml.store._metric_order import MISSING, NAN, REAL, metric_first_page_query
from flowml.store._search_common import (
    check_max_results,
    compare,
    fetch_page,
    key_value_exists,
    page_query,
    view_stages,
)

__all__ = [
    "EXPERIMENTS_MAX_RESULTS_THRESHOLD",
    "RUN_INFO_COLUMNS",
    "SEARCH_MAX_RESULTS_DEFAULT",
    "SEARCH_MAX_RESULTS_THRESHOLD",
    "run_search_statement",
    "search_experiment_ids",
    "search_run_ids",
    "search_run_page",
]

SEARCH_MAX_RESULTS_DEFAULT = 1000
SEARCH_MAX_RESULTS_THRESHOLD = 50_000

#: The ``runs`` columns a :func:`search_run_page` row carries after ``run_id``: ``RunInfo``'s fields,
#: which are named as the columns.
RUN_INFO_COLUMNS = tuple(name for name in RunInfo.__dataclass_fields__ if name != "run_id")
_NUMERIC_RUN_ATTRIBUTES = frozenset({"start_time", "end_time"})
_START_TIME = Key(Entity.ATTRIBUTE, "start_time")
_RUN_ID = Key(Entity.ATTRIBUTE, "run_id")
_KV_TABLES = {Entity.METRIC: "latest_metrics", Entity.PARAM: "params", Entity.TAG: "run_tags"}
_CONTEXT_TAG = "mlflow.data.context"
# The default run order (what ``ix_runs_experiment_start`` and ``ix_params_experiment_key_value`` hold).
_DEFAULT_RUN_ORDERS = (
    (),
    (OrderBy(_START_TIME, ascending=False),),
    (OrderBy(_START_TIME, ascending=False), OrderBy(_RUN_ID, ascending=True)),
)


def _experiment_ids(experiment_ids: Sequence[int]) -> list[int]:
    try:
        return sorted({int(e) for e in experiment_ids})
    except (TypeError, ValueError) as exc:
        raise InvalidParameterValue(f"Invalid experiment ids {experiment_ids!r}") from exc


# -- runs -------------------------------------------------------------------------------------


def _run_condition(
    ops: StringOps, clause: Comparison, owner: ColumnElement[Any] | None = None
) -> ColumnElement[bool]:
    """``clause`` on ``runs``; key/value clauses correlate on ``owner`` (``runs.run_id`` by default)."""
    runs = table("runs")
    key = clause.key
    if key.entity is Entity.ATTRIBUTE:
        text = key.name not in _NUMERIC_RUN_ATTRIBUTES
        return compare(ops, runs.c[key.name], clause.comparator, clause.value, text=text)
    kv_owner = runs.c.run_id if owner is None else owner
    if key.entity is Entity.DATASET:
        return _dataset_input_exists(ops, kv_owner, clause)
    return key_value_exists(ops, table(_KV_TABLES[key.entity]), kv_owner, "run_id", clause)


def _dataset_input_exists(
    ops: StringOps, owner: ColumnElement[Any], clause: Comparison
) -> ColumnElement[bool]:
    """MLflow's rule: the run has a dataset input whose ``name``, ``digest`` or context (the input's
    ``mlflow.data.context`` tag, kept in its JSON ``tags``) satisfies ``clause``."""
    inputs, datasets = table("run_dataset_inputs").alias(), table("datasets").alias()
    column: ColumnElement[Any]
    if clause.key.name == "context":
        column = (
            func.json_extract_path_text(cast(inputs.c.tags, JSON), _CONTEXT_TAG)
            if ops.dialect == "postgresql"
            else func.json_extract(inputs.c.tags, f'$."{_CONTEXT_TAG}"')
        )
    else:
        column = datasets.c[clause.key.name]
    return exists().where(
        inputs.c.run_id == owner,
        datasets.c.dataset_id == inputs.c.dataset_id,
        compare(ops, column, clause.comparator, clause.value, text=True),
    )


def _run_sort(
    ops: StringOps, orders: Sequence[OrderBy], *, base: Any = None, offset: int = 0
) -> tuple[list[SortPart], Any]:
    """Sort parts for ``orders`` + the default tie-breaks, and the FROM clause with its joins.

    ``base`` is the FROM clause to extend (``runs`` by default); ``offset`` numbers the join aliases.
    """
    runs = table("runs")
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
        joined = alias(_KV_TABLES[key.entity], f"sort_{i}")
        from_ = from_.outerjoin(joined, and_(joined.c.run_id == runs.c.run_id, joined.c.key == key.name))
        if key.entity is Entity.METRIC:
            rank = case((joined.c.run_id.is_(None), MISSING), (joined.c.is_nan == true(), NAN), else_=REAL)
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
    return _search_page(
        session, experiment_ids, filter_string, view_type, max_results, order_by, page_token, with_info=False
    )


def search_run_page(
    session: Session,
    experiment_ids: Sequence[int],
    filter_string: str | None,
    view_type: ViewType,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
) -> tuple[list[Any], str | None]:
    """:func:`search_run_ids` with whole rows: ``run_id``, the :data:`RUN_INFO_COLUMNS`, then the
    sort keys. The search reads each run's row anyway, so loading the page need not read it again
    (:func:`flowml.store.run_load.load_page`)."""
    return _search_page(
        session, experiment_ids, filter_string, view_type, max_results, order_by, page_token, with_info=True
    )


def _search_page(
    session: Session,
    experiment_ids: Sequence[int],
    filter_string: str | None,
    view_type: ViewType,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
    *,
    with_info: bool,
) -> tuple[list[Any], str | None]:
    """The page's ids (or whole rows, ``with_info``) and the next token."""
    dialect = session.get_bind().dialect.name
    search = _run_search(
        dialect, experiment_ids, filter_string, view_type, max_results, order_by, page_token, with_info
    )
    if search is None:
        return [], None
    stmt, fingerprint, parts = search
    return fetch_page(session, stmt, fingerprint, parts, max_results, whole_rows=with_info)


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
        dialect, experiment_ids, filter_string, view_type, max_results, order_by, page_token, False
    )
    return None if search is None else search[0]


def _run_search(
    dialect: str,
    experiment_ids: Sequence[int],
    filter_string: str | None,
    view_type: ViewType,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
    with_info: bool,
) -> tuple[Select[Any], str, list[SortPart]] | None:
    """:func:`_build_run_search`, remembered for requests of plain values (the statement, never rows).

    Building the statement costs ~1 ms, and re-executing the same statement object lets SQLAlchemy
    skip compiling it; a dashboard re-running one search is the common case.
    """
    check_max_results(max_results, SEARCH_MAX_RESULTS_THRESHOLD)  # first: as a cache key, True == 1
    exp_key = tuple(experiment_ids)
    order_key = None if order_by is None else tuple(order_by)
    if (
        all(type(e) is int for e in exp_key)
        and all(type(o) is str for o in order_key or ())
        and type(view_type) in (ViewType, int)
        and (filter_string is None or type(filter_string) is str)
        and (page_token is None or type(page_token) is str)
    ):
        return _cached_run_search(
            dialect, exp_key, filter_string, view_type, max_results, order_key, page_token, with_info
        )
    return _build_run_search(
        dialect, experiment_ids, filter_string, view_type, max_results, order_by, page_token, with_info
    )


def _build_run_search(
    dialect: str,
    experiment_ids: Sequence[int],
    filter_string: str | None,
    view_type: ViewType,
    max_results: int,
    order_by: Sequence[str] | None,
    page_token: str | None,
    with_info: bool,
) -> tuple[Select[Any], str, list[SortPart]] | None:
    """The page's statement (``run_id``, the :data:`RUN_INFO_COLUMNS` if ``with_info``, then the
    sort keys), the search's fingerprint and the sort parts."""
    check_max_results(max_results, SEARCH_MAX_RESULTS_THRESHOLD)
    parsed = parse_filter(filter_string, SearchKind.RUNS)
    orders = parse_order_by(order_by, SearchKind.RUNS)
    stages = view_stages(view_type)
    ops = StringOps(dialect)
    parts, from_ = _run_sort(ops, orders)
    exp_ids = _experiment_ids(experiment_ids)
    fingerprint = query_fingerprint(
        "runs", exp_ids, stages, parsed.to_string(), [o.to_string() for o in orders]
    )
    cursor = decode_page_token(page_token, fingerprint, parts) if page_token else None
    if not exp_ids:
        return None
    runs = table("runs")
    info = [runs.c[name].label(f"info_{name}") for name in RUN_INFO_COLUMNS] if with_info else []
    driver = _param_driver(parsed.clauses, orders, exp_ids)
    if driver is not None:
        others = [c for c in parsed.clauses if c is not driver]
        stmt = _param_driven_page_query(ops, driver, exp_ids[0], stages, others, cursor, max_results, info)
        return stmt, fingerprint, parts
    conditions: list[ColumnElement[bool]] = [
        runs.c.experiment_id.in_(exp_ids),
        runs.c.lifecycle_stage.in_(stages),
    ]
    conditions += [_run_condition(ops, clause) for clause in parsed.clauses]
    if orders and orders[0].key.entity is Entity.METRIC and not _pins_run_ids(parsed.clauses):

        def sort_rest(base: Any) -> tuple[list[SortPart], Any]:
            return _run_sort(ops, orders[1:], base=base, offset=1)

        stmt = metric_first_page_query(ops, orders, conditions, cursor, max_results, sort_rest, info)
        return stmt, fingerprint, parts
    if cursor is not None:
        conditions.append(after_cursor(parts, cursor))
    return page_query(runs.c.run_id, from_, conditions, parts, max_results, info), fingerprint, parts


_cached_run_search = functools.lru_cache(maxsize=128)(_build_run_search)


def _pins_run_ids(clauses: Sequence[Comparison]) -> bool:
    """``run_id = x`` / ``run_id IN (...)``: a handful of runs, cheaper to sort than to seek."""
    return any(c.key == _RUN_ID and c.comparator in (Comparator.EQ, Comparator.IN) for c in clauses)


def _param_driver(
    clauses: Sequence[Comparison], orders: Sequence[OrderBy], exp_ids: Sequence[int]
) -> Comparison | None:
    """The ``params.<key> = '<value>'`` clause to drive a default-order search of one experiment."""
    if len(exp_ids) != 1 or tuple(orders) not in _DEFAULT_RUN_ORDERS:
        return None
    for clause in clauses:
        if clause.key.entity is Entity.PARAM and clause.comparator is Comparator.EQ:
            return clause
    return None


def _param_driven_page_query(
    ops: StringOps,
    driver: Comparison,
    experiment_id: int,
    stages: Sequence[str],
    others: Sequence[Comparison],
    cursor: Sequence[Any] | None,
    max_results: int,
    info: Sequence[ColumnElement[Any]],
) -> Select[Any]:
    """A default-order page read from the runs whose param equals ``driver``'s value.

    ``ix_params_experiment_key_value`` holds ``(experiment_id, key, value, start_time DESC,
    run_id)``, so the matching params rows come in the page's order (params copy their run's
    ``start_time``) and the walk stops after the page: the work is proportional to the page divided
    by the selectivity of the *other* clauses, and a value no run has costs one index probe. The
    other clauses are checked per entry (their ``EXISTS`` correlate on the params row, so they run
    before the run's own row is read); ``runs`` supplies the lifecycle stage and attributes.
    """
    runs = table("runs")
    drive = alias("params", "drive")
    conditions: list[ColumnElement[bool]] = [
        drive.c.experiment_id == experiment_id,
        drive.c.key == driver.key.name,
        drive.c.value == driver.value,
        runs.c.lifecycle_stage.in_(stages),
    ]
    conditions += [_run_condition(ops, clause, owner=drive.c.run_id) for clause in others]
    parts = [SortPart(drive.c.start_time, False, "int"), SortPart(ops.text(drive.c.run_id), True, "str")]
    if cursor is not None:
        conditions.append(after_cursor(parts, cursor))
    from_ = DrivingJoin(drive, runs, runs.c.run_id == drive.c.run_id)
    return page_query(drive.c.run_id, from_, conditions, parts, max_results, info)
