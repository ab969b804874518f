"""The typed syntax tree a filter string or an ``order_by`` item parses into.

Every node is a frozen dataclass, so trees compare by value and can be shared freely.
``to_string()`` renders a node in the canonical spelling (entity prefixes in their plural form,
attribute aliases resolved, keys quoted with backticks only when needed, strings in single
quotes), which parses back to an equal tree.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

__all__ = [
    "Comparator",
    "Comparison",
    "Entity",
    "Filter",
    "Key",
    "OrderBy",
    "SearchKind",
    "Value",
]

#: What a comparison compares against: a string, a number, a list of strings (``IN``), or
#: nothing (``IS NULL`` / ``IS NOT NULL``).
Value = str | int | float | tuple[str, ...] | None

_PLAIN_KEY = re.compile(r"\w+(?:\.\w+)*")


class SearchKind(enum.Enum):
    """Which search a filter belongs to; each has its own keys and comparators."""

    RUNS = "runs"
    EXPERIMENTS = "experiments"
    REGISTERED_MODELS = "registered_models"
    MODEL_VERSIONS = "model_versions"
    LOGGED_MODELS = "logged_models"


class Entity(enum.Enum):
    """What a key names. The value is the canonical prefix ``to_string`` writes."""

    METRIC = "metrics"
    PARAM = "params"
    TAG = "tags"
    ATTRIBUTE = "attributes"
    DATASET = "datasets"  # runs' dataset inputs: name, digest, context


class Comparator(enum.Enum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    LIKE = "LIKE"
    ILIKE = "ILIKE"
    IN = "IN"
    NOT_IN = "NOT IN"
    IS_NULL = "IS NULL"
    IS_NOT_NULL = "IS NOT NULL"

    @property
    def takes_value(self) -> bool:
        return self not in (Comparator.IS_NULL, Comparator.IS_NOT_NULL)

    @property
    def takes_list(self) -> bool:
        return self in (Comparator.IN, Comparator.NOT_IN)


def quote_string(value: str) -> str:
    """``value`` as a single-quoted literal; an embedded quote is doubled (SQL style)."""
    return "'" + value.replace("'", "''") + "'"


def format_number(value: int | float) -> str:
    """A number literal the lexer reads back to the same value (±inf as an overflowing literal)."""
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "1e999" if value > 0 else "-1e999"
    return repr(value)


def _format_key(name: str) -> str:
    if _PLAIN_KEY.fullmatch(name):
        return name
    return "`" + name.replace("`", "``") + "`"


@dataclass(frozen=True, slots=True)
class Key:
    """An entity and a canonical key name (attribute aliases such as ``created`` resolved)."""

    entity: Entity
    name: str

    def to_string(self) -> str:
        if self.entity is Entity.ATTRIBUTE:
            return self.name  # canonical attribute names are plain identifiers
        return f"{self.entity.value}.{_format_key(self.name)}"


@dataclass(frozen=True, slots=True)
class Comparison:
    """One clause: ``key comparator value``."""

    key: Key
    comparator: Comparator
    value: Value

    def to_string(self) -> str:
        head = f"{self.key.to_string()} {self.comparator.value}"
        value = self.value
        if value is None:
            return head
        if isinstance(value, tuple):
            return f"{head} (" + ", ".join(quote_string(v) for v in value) + ")"
        if isinstance(value, str):
            return f"{head} {quote_string(value)}"
        return f"{head} {format_number(value)}"


@dataclass(frozen=True, slots=True)
class Filter:
    """Clauses joined by ``AND`` (the grammar has no ``OR``); no clauses matches everything."""

    kind: SearchKind
    clauses: tuple[Comparison, ...] = ()

    def to_string(self) -> str:
        return " AND ".join(c.to_string() for c in self.clauses)


@dataclass(frozen=True, slots=True)
class OrderBy:
    """One ``order_by`` item."""

    key: Key
    ascending: bool = True

    def to_string(self) -> str:
        return f"{self.key.to_string()} {'ASC' if self.ascending else 'DESC'}"
