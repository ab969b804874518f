"""Search pieces shared by runs and experiments: comparisons, ``[NOT] EXISTS`` on key/value
tables, ``max_results`` / view type checks, and the keyset page (query + token).

Used by :mod:`flowml.store.filters` (runs) and :mod:`flowml.store._experiment_search`.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, and_, exists, select, true
from sqlalchemy.orm import Session

from flowml.entities import LifecycleStage, ViewType
from flowml.exceptions import InvalidParameterValue
from flowml.search import Comparator, Comparison, Entity
from flowml.store._filters_sql import SortPart, StringOps, encode_page_token

__all__ = [
    "check_max_results",
    "compare",
    "fetch_page",
    "key_value_exists",
    "page_query",
    "view_stages",
]

logger = logging.getLogger(__name__)

_BINARY_OPERATORS: dict[Comparator, Callable[[Any, Any], Any]] = {
    Comparator.EQ: operator.eq,
    Comparator.NE: operator.ne,
    Comparator.LT: operator.lt,
    Comparator.LE: operator.le,
    Comparator.GT: operator.gt,
    Comparator.GE: operator.ge,
}


def view_stages(view_type: ViewType | int) -> tuple[str, ...]:
    try:
        return LifecycleStage.for_view(view_type)
    except ValueError as exc:
        raise InvalidParameterValue(f"Invalid view type {view_type!r}") from exc


def check_max_results(max_results: int, threshold: int) -> None:
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


def compare(
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


def key_value_exists(
    ops: StringOps,
    kv_table: Table,
    owner: ColumnElement[Any],
    owner_col: str,
    clause: Comparison,
    *,
    restrict: Callable[[Any], ColumnElement[bool] | None] | None = None,
) -> ColumnElement[bool]:
    """``[NOT] EXISTS`` a (owner, key) row of ``kv_table`` whose value satisfies ``clause`` (and,
    given ``restrict``, the condition it makes of the row's table)."""
    kv = kv_table.alias()
    conditions: list[ColumnElement[bool]] = [kv.c[owner_col] == owner, kv.c.key == clause.key.name]
    extra = restrict(kv) if restrict is not None else None
    if extra is not None:
        conditions.append(extra)
    comp = clause.comparator
    if comp is Comparator.IS_NULL:
        return ~exists().where(*conditions)
    if comp is Comparator.IS_NOT_NULL:
        return exists().where(*conditions)
    if clause.key.entity is Entity.METRIC:
        matched = compare(ops, kv.c.value, comp, float(clause.value))  # type: ignore[arg-type]
        nan = kv.c.is_nan == true()
        # NaN is unequal to everything and comparable to nothing.
        conditions.append(matched | nan if comp is Comparator.NE else matched & ~nan)
    else:
        conditions.append(compare(ops, kv.c.value, comp, clause.value, text=True))
    return exists().where(*conditions)


def page_query(
    id_col: ColumnElement[Any],
    from_: Any,
    conditions: list[ColumnElement[bool]],
    parts: Sequence[SortPart],
    max_results: int,
    extra: Sequence[ColumnElement[Any]] = (),
) -> Select[Any]:
    """``SELECT id, *extra, sort keys ... ORDER BY sort keys LIMIT max_results + 1``."""
    columns = [p.expr.label(f"sort_key_{i}") for i, p in enumerate(parts)]
    return (
        select(id_col, *extra, *columns)
        .select_from(from_)
        .where(and_(true(), *conditions))
        .order_by(*(p.order() for p in parts))
        .limit(max_results + 1)
    )


def fetch_page(
    session: Session,
    stmt: Select[Any],
    fingerprint: str,
    parts: Sequence[SortPart],
    max_results: int,
    *,
    whole_rows: bool = False,
) -> tuple[list[Any], str | None]:
    """Run a :func:`page_query`: the page's ids (or whole rows) and the next page's token (the last
    row's sort key: the row's last ``len(parts)`` columns)."""
    rows = session.execute(stmt).all()
    token = None
    if len(rows) > max_results:
        rows = rows[:max_results]
        last = tuple(rows[-1])
        token = encode_page_token(fingerprint, parts, last[len(last) - len(parts) :])
    logger.debug("search page: %d rows, more=%s", len(rows), token is not None)
    return (list(rows) if whole_rows else [row[0] for row in rows]), token
