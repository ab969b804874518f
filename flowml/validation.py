"""MLflow's validation rules for names and values (``mlflow/utils/validation.py`` semantics).

Pure functions over plain values: used by the store (authoritative) and by the fluent layer (so a
buffered metric with a bad key fails at the call, not at a later flush).
"""

from __future__ import annotations

import math
import numbers
import posixpath
import re

from flowml.exceptions import InvalidParameterValue

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_BATCH_METRICS",
    "MAX_BATCH_PARAMS",
    "MAX_BATCH_TAGS",
    "MAX_BATCH_TOTAL",
    "MAX_ENTITY_KEY_LENGTH",
    "MAX_EXPERIMENT_NAME_LENGTH",
    "MAX_EXPERIMENT_TAG_VALUE_LENGTH",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "validate_batch_limits",
    "validate_experiment_id",
    "validate_experiment_name",
    "validate_key",
    "validate_metric",
    "validate_metric_point",
    "validate_param_value",
    "validate_run_id",
    "validate_tag_value",
]

MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_TAG_VALUE_LENGTH = 20000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_TOTAL = 1000

#: Metric timestamps and steps are protobuf int64 (and BIGINT columns).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_KEY_RE = re.compile(r"^[/\w.\- :]*$")
_RUN_ID_RE = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_EXPERIMENT_ID_RE = re.compile(r"^[0-9]{1,18}$")


def validate_key(key: object, kind: str = "key") -> str:
    """A param/metric/tag key: ≤250 chars of ``[/\\w.\\- :]`` that is a normalised relative path."""
    if not isinstance(key, str) or key == "":
        raise InvalidParameterValue(f"Invalid {kind} name: {key!r}. Names must be non-empty strings.")
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        raise InvalidParameterValue(
            f"{kind.capitalize()} name '{key[:40]}...' exceeds the maximum length of "
            f"{MAX_ENTITY_KEY_LENGTH} characters"
        )
    if not _KEY_RE.match(key):
        raise InvalidParameterValue(
            f"Invalid {kind} name: '{key}'. Names may only contain alphanumerics, underscores (_), "
            "dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)."
        )
    if posixpath.normpath(key) != key or key == "." or key.startswith(("..", "/")):
        raise InvalidParameterValue(
            f"Invalid {kind} name: '{key}'. Names must be normalised relative paths "
            "(no '..', leading '/', '//' or trailing '/')."
        )
    return key


def _validate_length(value: str, limit: int, what: str, key: str) -> str:
    if len(value) > limit:
        raise InvalidParameterValue(
            f"{what} value for '{key}' has length {len(value)}, which exceeds the limit of {limit}"
        )
    return value


def validate_param_value(key: str, value: object) -> str:
    return _validate_length(str(value), MAX_PARAM_VALUE_LENGTH, "Param", key)


def validate_tag_value(key: str, value: object, limit: int = MAX_TAG_VALUE_LENGTH) -> str:
    return _validate_length(str(value), limit, "Tag", key)


def validate_metric(key: str, value: object, timestamp: object, step: object) -> tuple[float, int, int]:
    """Check a metric point; returns ``(value, timestamp, step)`` as float/int/int."""
    validate_key(key, "metric")
    return validate_metric_point(key, value, timestamp, step)


def validate_metric_point(key: str, value: object, timestamp: object, step: object) -> tuple[float, int, int]:
    """:func:`validate_metric` without the key check (for batches that check each key once)."""
    # Fast path: the overwhelmingly common types, checked exactly (bool is not int here).
    vt, tt, st = type(value), type(timestamp), type(step)
    if (
        (vt is float or vt is int)
        and tt is int
        and st is int
        and 0 <= timestamp <= INT64_MAX  # type: ignore[operator]
        and INT64_MIN <= step <= INT64_MAX  # type: ignore[operator]
    ):
        return float(value), timestamp, step  # type: ignore[arg-type, return-value]
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        raise InvalidParameterValue(
            f"Got invalid value {value!r} for metric '{key}' (timestamp={timestamp}). "
            "Please specify value as a valid double (64-bit floating point)"
        )
    fvalue = float(value)  # type: ignore[arg-type]
    return fvalue, _as_int(key, "timestamp", timestamp, non_negative=True), _as_int(key, "step", step)


def _as_int(key: str, what: str, number: object, *, non_negative: bool = False) -> int:
    if (
        isinstance(number, bool)
        or not isinstance(number, numbers.Integral | float)
        or (isinstance(number, float) and not math.isfinite(number))
        or (non_negative and number < 0)  # type: ignore[operator]
        or not INT64_MIN <= number <= INT64_MAX  # type: ignore[operator]
    ):
        raise InvalidParameterValue(f"Got invalid {what} {number!r} for metric '{key}'")
    return int(number)  # type: ignore[call-overload]


def validate_batch_limits(n_metrics: int, n_params: int, n_tags: int) -> None:
    for count, limit, what in (
        (n_metrics, MAX_BATCH_METRICS, "metrics"),
        (n_params, MAX_BATCH_PARAMS, "params"),
        (n_tags, MAX_BATCH_TAGS, "tags"),
    ):
        if count > limit:
            raise InvalidParameterValue(
                f"A batch logging request can contain at most {limit} {what}. Got {count} {what}."
            )
    total = n_metrics + n_params + n_tags
    if total > MAX_BATCH_TOTAL:
        raise InvalidParameterValue(
            f"A batch logging request can contain at most {MAX_BATCH_TOTAL} metrics, params and "
            f"tags in total. Got {total}."
        )


def validate_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise InvalidParameterValue(f"Invalid run ID: {run_id!r}")
    return run_id


def validate_experiment_id(experiment_id: object) -> int:
    """Experiment ids are decimal integers carried as strings (MLflow's SQL store rule)."""
    text = str(experiment_id)
    if not _EXPERIMENT_ID_RE.match(text):
        raise InvalidParameterValue(f"Invalid experiment ID: {experiment_id!r}")
    return int(text)


def validate_experiment_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterValue(f"Invalid experiment name: {name!r}. It must be a non-empty string.")
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidParameterValue(
            f"Experiment name exceeds the maximum length of {MAX_EXPERIMENT_NAME_LENGTH} characters"
        )
    return name
