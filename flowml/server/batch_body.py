"""The ``runs/log-batch`` request body, parsed by orjson and checked by hand in one pass.

log-batch is the server's hot route (clients send hundreds of points per request, many requests a
second), so it skips FastAPI's body model: building 100 pydantic objects per request cost more than
writing them. The rules are :class:`flowml.server.schemas.LogBatch`'s (which still documents the
body in the OpenAPI schema) and protobuf's JSON mapping: int64 fields may be JSON numbers or decimal
strings, doubles may be numbers or ``"NaN"``/``"Infinity"``/``"-Infinity"``, absent repeated fields
are empty, unknown fields are ignored. Bad input is a 400 ``INVALID_PARAMETER_VALUE`` with MLflow's
wording (``Missing value for required parameter 'metrics[0].timestamp'.``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from flowml.entities import ModelMetric, Param, RunTag
from flowml.exceptions import InvalidParameterValue
from flowml.server.wire import parse_double
from flowml.store.run_data import Point, PreparedBatch, prepare_points
from flowml.validation import INT64_MAX, INT64_MIN, validate_batch_limits

__all__ = ["parse_log_batch"]

_TWO_63 = 2.0**63
_DECIMAL = re.compile(r"-?[0-9]{1,20}")
_SEE_DOCS = " See the API docs for more information about request parameters."


def _missing(path: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"Missing value for required parameter '{path}'.{_SEE_DOCS}")


def _invalid(path: str, value: object, why: str = "") -> InvalidParameterValue:
    try:
        shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        shown = repr(value)
    why = why or f"Hint: Value was of type '{type(value).__name__}'."
    return InvalidParameterValue(f"Invalid value {shown} for parameter '{path}' supplied: {why}{_SEE_DOCS}")


def _int64(value: object, path: str) -> int:
    """A protobuf int64 from JSON: a number with no fraction, or a decimal string."""
    if type(value) is int:
        number = value
    elif (type(value) is float and value.is_integer() and -_TWO_63 < value < _TWO_63) or (
        type(value) is str and _DECIMAL.fullmatch(value) is not None
    ):  # (orjson reads integers below int64's range as floats: ±2**63 as a float is out of range)
        number = int(value)
    else:
        raise _invalid(path, value, "expected a 64-bit integer.")
    if not INT64_MIN <= number <= INT64_MAX:
        raise _invalid(path, value, "out of the 64-bit integer range.")
    return number


def _point(i: int, metric: object) -> Point:
    if type(metric) is not dict:
        raise _invalid(f"metrics[{i}]", metric, "expected an object.")
    key, value, timestamp = metric.get("key"), metric.get("value"), metric.get("timestamp")
    step = metric.get("step")
    if key is None or key == "":
        raise _missing(f"metrics[{i}].key")
    if type(key) is not str:
        raise _invalid(f"metrics[{i}].key", key)
    if value is None:
        raise _missing(f"metrics[{i}].value")
    if timestamp is None:
        raise _missing(f"metrics[{i}].timestamp")
    try:
        number = parse_double(value, f"metrics[{i}].value")
    except OverflowError:
        raise _invalid(f"metrics[{i}].value", value, "out of the double range.") from None
    ts = _int64(timestamp, f"metrics[{i}].timestamp")
    if ts < 0:
        raise _invalid(f"metrics[{i}].timestamp", timestamp, "timestamps cannot be negative.")
    return key, number, ts, 0 if step is None else _int64(step, f"metrics[{i}].step")


def _fast_points(metrics: list[Any], lo: int = INT64_MIN, hi: int = INT64_MAX) -> list[Point] | None:
    """The common shape (string keys, numeric values, int timestamps and steps) without per-field
    calls; None when any point needs the careful path (which also names the bad field)."""
    points: list[Point] = []
    append = points.append
    for m in metrics:
        if type(m) is not dict:
            return None
        get: Any = m.get
        key, value, ts, step = get("key"), get("value"), get("timestamp"), get("step", 0)
        vt = type(value)
        if (
            (vt is float or (vt is int and -(2.0**1023) < value < 2.0**1023))
            and type(key) is str
            and key
            and type(ts) is int
            and type(step) is int
            and 0 <= ts <= hi
            and lo <= step <= hi
        ):
            append((key, float(value), ts, step))
        else:
            return None
    return points


def _pairs(data: dict[str, Any], field: str, kind: type[Param] | type[RunTag]) -> list[Any]:
    items = data.get(field)
    if items is None:
        return []
    if type(items) is not list:
        raise _invalid(field, items)
    out = []
    for i, item in enumerate(items):
        if type(item) is not dict:
            raise _invalid(f"{field}[{i}]", item, "expected an object.")
        key, value = item.get("key"), item.get("value")
        if key is None or key == "":
            raise _missing(f"{field}[{i}].key")
        if type(key) is not str:
            raise _invalid(f"{field}[{i}].key", key)
        out.append(kind(key, "" if value is None else value if type(value) is str else str(value)))
    return out


def _optional_str(metric: dict[str, Any], field: str, path: str) -> str | None:
    value = metric.get(field)
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise _invalid(f"{path}.{field}", value)
    return value


def _model_points(run_id: str, metrics: list[Any], points: list[Point]) -> list[ModelMetric]:
    """``points[i]`` again as a logged model's metric where ``metrics[i]`` names a ``model_id``."""
    out = []
    for i, metric in enumerate(metrics):
        if metric.get("model_id") in (None, ""):
            continue
        path = f"metrics[{i}]"
        model_id = _optional_str(metric, "model_id", path)
        key, value, timestamp, step = points[i]
        out.append(
            ModelMetric(
                key,
                value,
                timestamp,
                step,
                str(model_id),
                run_id,
                _optional_str(metric, "dataset_name", path),
                _optional_str(metric, "dataset_digest", path),
            )
        )
    return out


def parse_log_batch(raw: bytes) -> PreparedBatch:
    """Parse and validate a log-batch body; raises :class:`InvalidParameterValue` for bad input."""
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidParameterValue(f"Malformed JSON request body: {exc}") from None
    if type(data) is not dict:
        raise InvalidParameterValue("The request body must be a JSON object.")
    run_id = data.get("run_id") or data.get("run_uuid")
    if not run_id:
        raise _missing("run_id")
    if type(run_id) is not str:
        raise _invalid("run_id", run_id)
    metrics = data.get("metrics")
    if metrics is None:
        metrics = []
    elif type(metrics) is not list:
        raise _invalid("metrics", metrics)
    sizes = [len(v) if type(v) is list else 0 for v in (data.get("params"), data.get("tags"))]
    validate_batch_limits(len(metrics), *sizes)  # before any per-item work on the event loop
    points = _fast_points(metrics)
    if points is None:
        points = [_point(i, m) for i, m in enumerate(metrics)]
    params = _pairs(data, "params", Param)
    tags = _pairs(data, "tags", RunTag)
    # Most bodies never mention a model: a byte search spares them the per-point look-up (a body with
    # \u escapes, which could spell the field name, always takes it).
    named = b'"model_id"' in raw or b"\\u" in raw
    model_points = _model_points(run_id, metrics, points) if named else []
    return prepare_points(run_id, points, params, tags, model_points)
