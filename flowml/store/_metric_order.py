"""A run search ordered first by a metric: the top of ``ix_latest_metrics_key_value``, not a sort.

Used by :mod:`flowml.store.filters` for ``order_by=["metrics.<key> ..."]`` (see
:func:`metric_first_page_query` for the statement's shape).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Double,
    Select,
    and_,
    exists,
    false,
    func,
    literal_column,
    select,
    true,
    union_all,
)
from sqlalchemy import cast as cast_

from flowml.search import OrderBy
from flowml.store._filters_sql import DrivingJoin, SortPart, StringOps, after_cursor, alias, table

__all__ = ["MISSING", "NAN", "REAL", "metric_first_page_query"]

# Ranks of a metric sort key: real values first (either direction), then NaN, then a missing key.
REAL, NAN, MISSING = 0, 1, 2


def metric_first_page_query(
    ops: StringOps,
    orders: Sequence[OrderBy],
    conditions: list[ColumnElement[bool]],
    cursor: Sequence[Any] | None,
    max_results: int,
    sort_rest: Callable[[Any], tuple[list[SortPart], Any]],
    info: Sequence[ColumnElement[Any]] = (),
) -> Select[Any]:
    """A page ordered first by a metric, read in index order instead of sorting every run.

    ``sort_rest(from_)`` gives the sort parts of the remaining order keys (and the tie-breaks) and
    ``from_`` extended with the joins they need; ``info`` are ``runs`` columns to select after
    ``run_id`` (the sort keys come last).

    The metric's sort key is (rank, value, rest...), and each rank is one segment with its own
    ``ORDER BY ... LIMIT``:

    * real values: ``latest_metrics`` rows of the key in ``ix_latest_metrics_key_value`` order
      (so the top-N is read, not sorted), joined back to ``runs`` for the run conditions;
    * NaN values: the same index at ``value = 0`` (how NaN is stored) with ``is_nan``;
      both joins name ``latest_metrics`` as the driving table (:class:`DrivingJoin`): otherwise
      SQLite may walk the covering ``ix_runs_experiment_start`` and probe every run;
    * missing key: ``runs`` in ``ix_runs_experiment_start`` order with ``NOT EXISTS`` the key.

    The segments are ``UNION ALL``-ed under one ``ORDER BY ... LIMIT``. A later segment's LIMIT
    is what the earlier ones left of the page (each earlier segment is a materialised CTE and
    the LIMIT subtracts their row counts); both SQLite and PostgreSQL skip a scan whose LIMIT is
    0 before reading a row, so a page that the real values fill never scans for NaN or missing
    keys. (A constant ``WHERE`` guard would not do: SQLite re-tests it per row of the scan.)
    Segments wholly before the page token's rank are left out.
    """
    runs = table("runs")
    first = orders[0]
    name, asc = first.key.name, first.ascending
    limit = max_results + 1
    start_rank = REAL if cursor is None else int(cursor[0])

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
            *info,
            literal_column(str(rank), BigInteger).label("sort_key_0"),
            value.label("sort_key_1"),
            *(p.expr.label(f"sort_key_{i}") for i, p in enumerate(rest, start=2)),
        ]
        return (
            select(*columns).select_from(from_).where(and_(true(), *where)).order_by(*ordering).limit(limit)
        )

    arms: list[Select[Any]] = []
    zero = cast_(literal_column("0.0"), Double)
    if start_rank <= REAL:
        lm = alias("latest_metrics", "sort_0")
        rest, from_ = sort_rest(DrivingJoin(lm, runs, runs.c.run_id == lm.c.run_id))
        arms.append(
            arm(
                REAL,
                from_,
                lm.c.value,
                [lm.c.key == name, lm.c.is_nan == false()],
                SortPart(lm.c.value, asc, "float"),
                rest,
            )
        )
    if start_rank <= NAN:
        lm = alias("latest_metrics", "sort_0")
        rest, from_ = sort_rest(DrivingJoin(lm, runs, runs.c.run_id == lm.c.run_id))
        nan_rows = [lm.c.key == name, lm.c.value == 0.0, lm.c.is_nan == true()]
        arms.append(arm(NAN, from_, zero, nan_rows, None, rest))
    lm = alias("latest_metrics", "has_0")
    rest, from_ = sort_rest(None)
    missing = ~exists().where(lm.c.run_id == runs.c.run_id, lm.c.key == name)
    arms.append(arm(MISSING, from_, zero, [missing], None, rest))

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
