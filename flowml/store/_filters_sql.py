"""Portable SQL pieces for search: string comparisons, sort keys, keyset pages, page tokens.

Why each piece looks the way it does:

* **Strings compare bytewise on both backends.** SQLite's default BINARY collation already does;
  on PostgreSQL ordering and range comparisons use ``COLLATE "C"`` (the database's own collation
  may be linguistic, e.g. ``en_US.UTF-8``, which orders ``'B' < 'a'`` differently).
* **LIKE is case-sensitive without relying on a pragma.** SQLite gets the pattern translated to
  ``GLOB`` (always case-sensitive); PostgreSQL's LIKE is case-sensitive, and its default escape
  character (backslash) is neutralised so ``\\`` is a literal on both, as in MLflow on SQLite.
* **ILIKE folds ASCII letters only on both**: ``lower(col) GLOB lower(pattern)`` on SQLite (whose
  ``lower`` is ASCII-only) and ``lower(col COLLATE "C") LIKE lower(pattern)`` on PostgreSQL (the
  C collation's ``lower`` is ASCII-only too).
* **Every sort key is a list of non-NULL parts** (a rank for missing/NaN values, then the value),
  so "after the last row" is a plain lexicographic comparison that both backends evaluate the
  same way; that is what makes keyset pages exact.
* **A join can name the table that drives it** (:class:`DrivingJoin`): SQLite has no statistics
  (flowml never runs ``ANALYZE``), so where the cheap plan starts from a particular index the
  query says so with ``CROSS JOIN``, which SQLite never reorders.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, false, func, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.selectable import Join

from flowml.exceptions import InvalidParameterValue
from flowml.store.tables import metadata

__all__ = [
    "DrivingJoin",
    "SortPart",
    "StringOps",
    "after_cursor",
    "alias",
    "decode_page_token",
    "encode_page_token",
    "query_fingerprint",
    "table",
]

_TOKEN_VERSION = 1


def table(name: str) -> Table:
    return metadata.tables[name]


@functools.lru_cache(maxsize=256)
def alias(table_name: str, name: str) -> Any:
    """A named alias of a table, built once (its column collection costs ~0.1 ms to build)."""
    return table(table_name).alias(name)


class DrivingJoin(Join):
    """An inner join whose left side drives the loop: ``CROSS JOIN ... ON`` on SQLite.

    SQLite never reorders the tables of a ``CROSS JOIN``. Without it, lacking statistics, SQLite
    may prefer scanning ``runs`` in ``start_time`` order (to skip a sort) and probing each run,
    which reads every run of the experiment instead of the few index entries that match.
    """

    inherit_cache = True


@compiles(DrivingJoin, "sqlite")
def _compile_driving_join(element: DrivingJoin, compiler: Any, **kw: Any) -> str:
    rendered = str(compiler.visit_join(element, **kw))
    head, sep, tail = rendered.partition(" JOIN ")  # the left side is a plain (aliased) table
    return f"{head} CROSS JOIN {tail}" if sep else rendered


def _ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def like_to_glob(pattern: str) -> str:
    """Translate a LIKE pattern (``%``, ``_``, no escape character) into an equivalent GLOB."""
    out: list[str] = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class StringOps:
    """String comparisons and ordering for one SQL dialect (``sqlite``, ``postgresql``, other)."""

    dialect: str

    def text(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        """``expr`` with a bytewise collation, for ORDER BY and range comparisons."""
        return expr.collate("C") if self.dialect == "postgresql" else expr

    def like(self, expr: ColumnElement[Any], pattern: str) -> ColumnElement[bool]:
        if self.dialect == "sqlite":
            return expr.op("GLOB", is_comparison=True)(like_to_glob(pattern))
        if self.dialect == "postgresql":
            return expr.like(pattern.replace("\\", "\\\\"))
        return expr.like(pattern)

    def ilike(self, expr: ColumnElement[Any], pattern: str) -> ColumnElement[bool]:
        lowered = _ascii_lower(pattern)
        if self.dialect == "sqlite":
            return func.lower(expr).op("GLOB", is_comparison=True)(like_to_glob(lowered))
        if self.dialect == "postgresql":
            return func.lower(expr.collate("C")).like(lowered.replace("\\", "\\\\"))
        return expr.ilike(pattern)


@dataclass(frozen=True, slots=True)
class SortPart:
    """One non-NULL component of a sort key; ``kind`` types its value in a page token."""

    expr: ColumnElement[Any]
    ascending: bool
    kind: str  # "int" | "float" | "str"

    def order(self) -> ColumnElement[Any]:
        return self.expr.asc() if self.ascending else self.expr.desc()


def after_cursor(parts: Sequence[SortPart], cursor: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``cursor`` in the order of ``parts`` (a lexicographic comparison)."""
    alternatives: list[ColumnElement[bool]] = []
    for i, part in enumerate(parts):
        equal_prefix = [parts[j].expr == cursor[j] for j in range(i)]
        beyond = part.expr > cursor[i] if part.ascending else part.expr < cursor[i]
        alternatives.append(and_(*equal_prefix, beyond))
    return or_(*alternatives) if alternatives else false()


def query_fingerprint(*parts: object) -> str:
    """A short digest of what defines a search, so a token is only accepted by the same search."""
    blob = json.dumps([str(p) for p in parts], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _encode_value(value: Any, kind: str) -> Any:
    if kind == "float":
        number = float(value)
        return repr(number) if math.isinf(number) else number
    return value


def encode_page_token(fingerprint: str, parts: Sequence[SortPart], row: Sequence[Any]) -> str:
    """Opaque token: base64url(JSON ``{"v": 1, "q": fingerprint, "k": [last row's sort key]}``)."""
    key = [_encode_value(v, p.kind) for p, v in zip(parts, row, strict=True)]
    payload = json.dumps({"v": _TOKEN_VERSION, "q": fingerprint, "k": key}, allow_nan=False)
    return base64.urlsafe_b64encode(payload.encode()).decode()


def _decode_value(value: Any, kind: str) -> Any:
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float":
        if isinstance(value, str) and value in ("inf", "-inf"):
            return float(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    raise ValueError(f"bad {kind} value {value!r}")


def decode_page_token(token: str, fingerprint: str, parts: Sequence[SortPart]) -> list[Any]:
    """The sort key stored in ``token``; INVALID_PARAMETER_VALUE when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        payload = json.loads(raw)
    except (UnicodeError, binascii.Error, ValueError, RecursionError) as exc:
        raise InvalidParameterValue("Invalid page token, could not base64-decode") from exc
    if not isinstance(payload, dict) or payload.get("v") != _TOKEN_VERSION:
        raise InvalidParameterValue(f"Invalid page token {token!r}")
    if payload.get("q") != fingerprint:
        raise InvalidParameterValue(
            "Invalid page token: it was issued for a different search "
            "(experiments, filter, order_by or view type changed)"
        )
    key = payload.get("k")
    if not isinstance(key, list) or len(key) != len(parts):
        raise InvalidParameterValue(f"Invalid page token {token!r}")
    try:
        return [_decode_value(v, p.kind) for p, v in zip(parts, key, strict=True)]
    except ValueError as exc:
        raise InvalidParameterValue(f"Invalid page token {token!r}") from exc
