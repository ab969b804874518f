"""MLflow's search filter grammar as a typed syntax tree (pure: no SQL, no I/O).

>>> from flowml.search import parse_filter, parse_order_by
>>> f = parse_filter("metrics.acc > 0.8 and params.`model type` = 'cnn'")
>>> f.to_string()
"metrics.acc > 0.8 AND params.`model type` = 'cnn'"
>>> parse_order_by(["metrics.acc DESC"])[0].to_string()
'metrics.acc DESC'

Every bad input raises :class:`flowml.exceptions.InvalidParameterValue` whose message names the
offending token and its 0-based character position.
"""

from __future__ import annotations

from flowml.search._ast import (
    Comparator,
    Comparison,
    Entity,
    Filter,
    Key,
    OrderBy,
    SearchKind,
    Value,
)
from flowml.search._parser import parse_filter, parse_order_by

__all__ = [
    "Comparator",
    "Comparison",
    "Entity",
    "Filter",
    "Key",
    "OrderBy",
    "SearchKind",
    "Value",
    "parse_filter",
    "parse_order_by",
]
