"""MLflow's scoring protocol (``/invocations``) as pure functions: bytes in, model input out, and back.

Mirrors ``mlflow/pyfunc/scoring_server/__init__.py``:

- content types ``application/json`` and ``text/csv``; only the ``charset`` parameter is allowed and
  it must be UTF-8; anything else is answered with 415;
- a JSON body is an object with **exactly one** of ``dataframe_split``, ``dataframe_records``,
  ``instances``, ``inputs`` and an optional ``params`` object; anything else is 400 ``BAD_REQUEST``;
- CSV is read with ``pandas.read_csv``, with column dtypes taken from the model's signature;
- predictions are answered as ``{"predictions": ...}`` (pandas → records, numpy → lists);
- errors are ``{"error_code", "message"}`` with MLflow's HTTP statuses and never a stack trace.

Nothing here knows about HTTP servers: :func:`invoke` maps (body, content type) to (status, body,
media type), so the same code serves BentoML, a bare ASGI app or a test.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from flowml.exceptions import FlowmlError, http_status_for

__all__ = [
    "FORMAT_KEYS",
    "SUPPORTED_CONTENT_TYPES",
    "ScoringError",
    "UnsupportedMediaType",
    "error_response",
    "invoke",
    "model_predict",
    "parse_content_type",
    "parse_csv_input",
    "parse_json_input",
    "parse_request",
    "prepare_input",
    "serialize_predictions",
    "to_jsonable",
]

_log = logging.getLogger(__name__)

JSON = "application/json"
CSV = "text/csv"
SUPPORTED_CONTENT_TYPES = (JSON, CSV)
FORMAT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_FORMAT_SET = frozenset(FORMAT_KEYS)


class ScoringError(FlowmlError):
    """A request the scoring protocol refuses; ``status`` overrides the error code's HTTP status."""

    default_code = "BAD_REQUEST"

    def __init__(self, message: str, error_code: str | None = None, status: int | None = None) -> None:
        super().__init__(message, error_code)
        self.status = status if status is not None else http_status_for(self.error_code)

    @property
    def http_status(self) -> int:
        return self.status


class UnsupportedMediaType(ScoringError):
    """415: a content type other than JSON/CSV, a parameter other than charset, or a non-UTF-8 charset."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "BAD_REQUEST", 415)


def _unsupported(content_type: str | None) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        "This predictor only supports the following content types: "
        f"{', '.join(SUPPORTED_CONTENT_TYPES)}. Got '{content_type or ''}'."
    )


def parse_content_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` → ``application/json``; raise 415 for anything unsupported."""
    if not content_type:
        raise _unsupported(content_type)
    mime, *raw_params = (part.strip() for part in content_type.split(";"))
    mime = mime.lower()
    if mime not in SUPPORTED_CONTENT_TYPES:
        raise _unsupported(content_type)
    for raw in raw_params:
        if not raw:
            continue
        key, _, value = raw.partition("=")
        key = key.strip().lower()
        value = value.strip().strip('"').lower()
        if key != "charset":
            raise UnsupportedMediaType(
                f"Unrecognized content type parameter: {key}. The only valid parameter is charset. "
                "Note that the scoring protocol changed in MLflow 2.0: the format is now given by a key "
                f"of the JSON body ({', '.join(FORMAT_KEYS)}), not by a content type parameter."
            )
        if value not in ("utf-8", "utf8"):
            raise UnsupportedMediaType(f"Unsupported charset {value!r}: only UTF-8 is accepted.")
    return mime


def _schema_dtypes(schema: Any) -> dict[str, str] | None:
    """{column: numpy dtype} for a named column-based signature (what ``read_csv`` should produce)."""
    from flowml.models.enforce import _NUMPY_OF
    from flowml.models.signature import ColSpec

    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    dtypes: dict[str, str] = {}
    for spec in schema.inputs:
        if isinstance(spec, ColSpec) and spec.name and isinstance(spec.type, str):
            dtype = _NUMPY_OF.get(spec.type)
            if dtype is not None and spec.type not in ("datetime", "boolean"):
                dtypes[spec.name] = dtype
    return dtypes or None


def parse_csv_input(body: bytes, schema: Any = None) -> Any:
    """A CSV body → DataFrame, typed from ``schema`` (a signature's input ``Schema``) when it has names."""
    import pandas as pd

    dtypes = _schema_dtypes(schema)
    try:
        frame = pd.read_csv(io.BytesIO(body))
        if dtypes:
            present = {str(c) for c in frame.columns}
            frame = frame.astype({k: v for k, v in dtypes.items() if k in present})
        return frame
    except (ValueError, TypeError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ScoringError(f"Failed to parse input as a CSV file: {exc}") from None


def _records_to_frame(records: Any, key: str) -> Any:
    import pandas as pd

    if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
        raise ScoringError(f"'{key}' must be a list of JSON objects (one per row)")
    return pd.DataFrame.from_records(records)


def _tensor_input(body: Any, key: str) -> Any:
    """``instances`` / ``inputs``: TF-serving row or columnar format."""
    import numpy as np

    if isinstance(body, Mapping):  # columnar: {name: values}
        return {str(k): np.asarray(v) for k, v in body.items()}
    if isinstance(body, list):
        if body and all(isinstance(v, Mapping) for v in body):  # rows of named values
            return _records_to_frame(body, key)
        try:
            return np.asarray(body)
        except ValueError as exc:
            raise ScoringError(f"Failed to parse '{key}' as a tensor: {exc}") from None
    return body


def parse_json_input(body: bytes | str | Mapping[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    """An MLflow JSON payload → (model input, params). Malformed input raises 400 ``BAD_REQUEST``."""
    import pandas as pd

    if isinstance(body, bytes | str):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ScoringError(f"Invalid input. Ensure the input is valid JSON: {exc}") from None
    else:
        data = body
    if not isinstance(data, Mapping):
        raise ScoringError(
            "Invalid input: the JSON body must be an object with exactly one of these keys: "
            f"{', '.join(FORMAT_KEYS)} (and optionally 'params'); got {type(data).__name__}."
        )
    keys = [k for k in data if k in _FORMAT_SET]
    if len(keys) != 1:
        raise ScoringError(
            "Invalid input. The input must contain exactly one of these keys: "
            f"{', '.join(FORMAT_KEYS)}; got {sorted(map(str, data)) or 'none'}."
        )
    raw_params = data.get("params")
    if raw_params is not None and not isinstance(raw_params, Mapping):
        raise ScoringError("'params' must be a JSON object")
    params = {str(k): v for k, v in raw_params.items()} if raw_params else None
    key = keys[0]
    value = data[key]
    try:
        if key == "dataframe_split":
            if not isinstance(value, Mapping) or "data" not in value:
                raise ScoringError("'dataframe_split' must be an object with 'columns' and 'data'")
            unknown = set(value) - {"columns", "data", "index"}
            if unknown:
                raise ScoringError(f"Unknown keys in 'dataframe_split': {sorted(unknown)}")
            return pd.DataFrame(value["data"], columns=value.get("columns"), index=value.get("index")), params
        if key == "dataframe_records":
            return _records_to_frame(value, key), params
        return _tensor_input(value, key), params
    except (ValueError, TypeError) as exc:
        raise ScoringError(f"Invalid input. Could not build the model input from '{key}': {exc}") from None


def parse_request(
    body: bytes, content_type: str | None, input_schema: Any = None
) -> tuple[Any, dict[str, Any] | None]:
    """(body, Content-Type header) → (model input, params), by content type."""
    mime = parse_content_type(content_type)
    if mime == CSV:
        return parse_csv_input(body, input_schema), None
    return parse_json_input(body)


def to_jsonable(predictions: Any) -> Any:
    """Predictions → plain JSON values: DataFrame → records, Series/ndarray → lists, numpy scalars."""
    import numpy as np
    import pandas as pd

    from flowml.models.example import to_json_safe

    if isinstance(predictions, pd.DataFrame):
        return to_json_safe(predictions.to_dict(orient="records"))
    if isinstance(predictions, pd.Series):
        return to_json_safe(predictions.to_numpy().tolist())
    if isinstance(predictions, np.ndarray):
        return predictions.tolist()
    return to_json_safe(predictions)


def serialize_predictions(predictions: Any) -> bytes:
    """``{"predictions": ...}`` as JSON bytes (pandas → records, numpy → lists)."""
    import numpy as np

    if isinstance(predictions, np.ndarray) and predictions.dtype.kind in "biuf":
        try:  # the fast path: orjson writes numeric numpy arrays natively
            return orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)
        except orjson.JSONEncodeError:
            pass
    return orjson.dumps({"predictions": to_jsonable(predictions)}, option=orjson.OPT_SERIALIZE_NUMPY)


def error_response(exc: BaseException) -> tuple[int, bytes]:
    """(status, ``{"error_code","message"}`` JSON) for any exception; unexpected ones never leak a trace."""
    if isinstance(exc, FlowmlError):
        status = exc.http_status
        return status, orjson.dumps({"error_code": exc.error_code, "message": exc.message})
    _log.exception("Unexpected error while scoring")
    message = (
        "Encountered an unexpected error while evaluating the model. Verify that the input is "
        f"compatible with the model for inference. Error: {type(exc).__name__}: {exc}"
    )
    return 400, orjson.dumps({"error_code": "BAD_REQUEST", "message": message})


def _conforms(data: Any, schema: Any) -> bool:
    """True when ``data`` is a DataFrame that ``enforce_schema`` would return unchanged.

    That is: a named, column-based schema of numeric/boolean columns, and a frame with exactly those
    columns, in that order, each already of the target dtype (what a JSON body of floats parses to for
    ``double`` columns). Then enforcement is an identity and can be skipped: it rebuilds the frame,
    which costs more than the prediction for a 1-row xgboost request.
    """
    import numpy as np
    import pandas as pd

    from flowml.models.enforce import _NUMPY_OF
    from flowml.models.signature import ColSpec

    if not isinstance(data, pd.DataFrame) or schema.is_tensor_spec() or not schema.has_input_names():
        return False
    specs = schema.inputs
    if len(specs) != len(data.columns):
        return False
    dtypes = data.dtypes
    for spec, column, dtype in zip(specs, data.columns, dtypes, strict=True):
        if not isinstance(spec, ColSpec) or spec.name != column or not isinstance(spec.type, str):
            return False
        if spec.type not in ("double", "float", "long", "integer", "boolean"):
            return False
        if dtype != np.dtype(_NUMPY_OF[spec.type]):
            return False
    return True


def _conforming(model: Any, data: Any) -> bool:
    """True when ``model`` has an input signature and ``data`` already conforms to it exactly."""
    signature = getattr(getattr(model, "metadata", None), "signature", None)
    return signature is not None and signature.inputs is not None and _conforms(data, signature.inputs)


def prepare_input(model: Any, data: Any) -> Any:
    """``data`` checked and converted against ``model``'s signature (unchanged when it conforms already).

    Raises the model's schema error (400 ``INVALID_PARAMETER_VALUE``) for input it would refuse; the
    result can be given to ``model.predict_prepared``.
    """
    if _conforming(model, data):
        return data
    return model.prepare_input(data)


def model_predict(model: Any, data: Any, params: dict[str, Any] | None = None) -> Any:
    """``model.predict(data, params)``; skips the signature check when it would change nothing.

    The fast path applies to a :class:`~flowml.models.pyfunc.PyFuncModel` with an input signature, on a
    frame that already conforms exactly (:func:`_conforms`); params are checked either way.
    """
    if hasattr(model, "predict_prepared") and _conforming(model, data):
        return model.predict_prepared(data, params)
    return model.predict(data, params=params)


def _input_schema(model: Any) -> Any:
    signature = getattr(getattr(model, "metadata", None), "signature", None)
    return signature.inputs if signature is not None else None


def double_columns(schema: Any) -> tuple[str, ...] | None:
    """The column names of a signature made only of required ``double`` columns, else None."""
    from flowml.models.signature import ColSpec

    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    specs = schema.inputs
    if not specs or not all(isinstance(s, ColSpec) and s.type == "double" and s.required for s in specs):
        return None
    return tuple(str(s.name) for s in specs)


def parse_double_rows(body: bytes, columns: tuple[str, ...]) -> Any:
    """The fast path of :func:`parse_json_input` for a model of ``double`` ``columns``, or None.

    A body that is exactly ``{"dataframe_split": {"columns": columns, "data": rows}}`` or
    ``{"dataframe_records": [{column: value, ...}, ...]}`` (keys in ``columns`` order), every value a JSON
    float, becomes a float64 array of shape (rows, columns): ``pd.DataFrame(array, columns=columns)`` is
    then exactly the frame :func:`parse_json_input` would build, and it conforms to the signature. Any
    other body (params, an index, ints, nulls, other keys...) → None: use the general path.
    """
    import numpy as np

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or len(data) != 1:
        return None
    key, value = next(iter(data.items()))
    if key == "dataframe_split":
        if type(value) is not dict or value.keys() != {"columns", "data"}:
            return None
        if value["columns"] != list(columns):
            return None
        rows = value["data"]
    elif key == "dataframe_records":
        if type(value) is not list or not all(type(r) is dict and tuple(r) == columns for r in value):
            return None
        rows = [list(r.values()) for r in value]
    else:
        return None
    if type(rows) is not list or not rows:
        return None
    width = len(columns)
    for row in rows:
        if type(row) is not list or len(row) != width or not all(type(v) is float for v in row):
            return None
    return np.array(rows, dtype=np.float64)


def invoke(
    model: Any,
    body: bytes,
    content_type: str | None,
    predict: Callable[[Any, dict[str, Any] | None], Any] | None = None,
) -> tuple[int, bytes]:
    """One ``/invocations`` call: (status, JSON body). ``predict`` defaults to :func:`model_predict`."""
    try:
        data, params = parse_request(body, content_type, _input_schema(model))
        result = model_predict(model, data, params) if predict is None else predict(data, params)
        return 200, serialize_predictions(result)
    except Exception as exc:  # noqa: BLE001 - every failure becomes an MLflow error JSON
        return error_response(exc)
