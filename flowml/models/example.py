"""Input examples as MLflow writes them: ``input_example.json`` + ``serving_input_example.json``.

``saved_input_example_info`` in ``MLmodel`` says how to read the example back:

- ``dataframe`` (``pandas_orient: split``): ``{"columns": [...], "data": [[...]]}``; serving payload
  ``{"dataframe_split": ...}``.
- ``ndarray``: a (nested) list or a dict of lists; serving payload ``{"inputs": ...}``.
- ``json_object``: any other JSON value (dict of scalars, list of records, a string); ``{"inputs": ...}``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from flowml.exceptions import InvalidParameterValue

__all__ = [
    "load_input_example",
    "load_serving_input_example",
    "parse_serving_input",
    "save_input_example",
    "to_json_safe",
]

EXAMPLE_FILE = "input_example.json"
SERVING_FILE = "serving_input_example.json"


def to_json_safe(value: Any) -> Any:
    """numpy/pandas scalars and arrays → plain JSON values."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return to_json_safe(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): to_json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_safe(v) for v in value]
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _limit(example: Any, rows: int = 5) -> Any:
    import pandas as pd

    if isinstance(example, pd.DataFrame | pd.Series):
        return example.head(rows)
    return example


def save_input_example(path: str, example: Any) -> dict[str, Any]:
    """Write the example files into model dir ``path``; return ``saved_input_example_info``."""
    import numpy as np
    import pandas as pd

    example = _limit(example)
    info: dict[str, Any] = {"artifact_path": EXAMPLE_FILE}
    if isinstance(example, pd.Series):
        example = example.to_frame()
    if isinstance(example, pd.DataFrame):
        payload = {
            "columns": [str(c) for c in example.columns],
            "data": to_json_safe(example.to_numpy(dtype=object).tolist()),
        }
        info.update(pandas_orient="split", type="dataframe")
        serving: Any = {"dataframe_split": payload}
    elif isinstance(example, np.ndarray) or (
        isinstance(example, Mapping) and example and all(isinstance(v, np.ndarray) for v in example.values())
    ):
        payload = to_json_safe(example)
        info["type"] = "ndarray"
        serving = {"inputs": payload}
    else:
        payload = to_json_safe(example)
        try:
            json.dumps(payload)
        except TypeError as exc:
            raise InvalidParameterValue(
                f"Unsupported input example of type {type(example).__name__}: it must be JSON serialisable, "
                "a pandas DataFrame or a numpy array"
            ) from exc
        info["type"] = "json_object"
        serving = {"inputs": payload}
    with open(os.path.join(path, EXAMPLE_FILE), "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
    with open(os.path.join(path, SERVING_FILE), "w", encoding="utf-8") as fh:
        json.dump(serving, fh, indent=2)
    info["serving_input_path"] = SERVING_FILE
    return info


def load_input_example(path: str, info: Mapping[str, Any] | None) -> Any:
    """The example saved in model dir ``path`` (None when the model has none)."""
    import numpy as np
    import pandas as pd

    if not info:
        return None
    with open(os.path.join(path, info.get("artifact_path", EXAMPLE_FILE)), encoding="utf-8") as fh:
        payload = json.load(fh)
    kind = info.get("type")
    if kind == "dataframe":
        if info.get("pandas_orient", "split") == "records":
            return pd.DataFrame.from_records(payload)
        return pd.DataFrame(payload["data"], columns=payload.get("columns"), index=payload.get("index"))
    if kind == "ndarray":
        if isinstance(payload, dict):
            payload = payload.get("inputs", payload)
            if isinstance(payload, dict):
                return {k: np.asarray(v) for k, v in payload.items()}
        return np.asarray(payload)
    return payload


def load_serving_input_example(path: str, info: Mapping[str, Any] | None) -> str | None:
    """The serving payload (JSON text) saved with the model, if any."""
    if not info or not info.get("serving_input_path"):
        return None
    with open(os.path.join(path, info["serving_input_path"]), encoding="utf-8") as fh:
        return fh.read()


def parse_serving_input(payload: str | bytes | Mapping[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    """MLflow's JSON scoring payload → (model input, params).

    Accepts ``dataframe_split``, ``dataframe_records``, ``instances`` and ``inputs`` (with optional
    ``params``), as ``/invocations`` does.
    """
    import numpy as np
    import pandas as pd

    data = json.loads(payload) if isinstance(payload, str | bytes) else dict(payload)
    if not isinstance(data, Mapping):
        raise InvalidParameterValue("A serving input must be a JSON object")
    keys = {"dataframe_split", "dataframe_records", "instances", "inputs"} & set(data)
    if len(keys) != 1:
        raise InvalidParameterValue(
            "A serving input needs exactly one of dataframe_split, dataframe_records, instances, inputs; "
            f"got {sorted(data)}"
        )
    raw_params = data.get("params")
    if raw_params is not None and not isinstance(raw_params, Mapping):
        raise InvalidParameterValue("`params` must be a JSON object")
    params = {str(k): v for k, v in raw_params.items()} if raw_params is not None else None
    key = keys.pop()
    body = data[key]
    if key == "dataframe_split":
        if not isinstance(body, Mapping):
            raise InvalidParameterValue("dataframe_split must be an object with columns and data")
        return pd.DataFrame(body.get("data"), columns=body.get("columns"), index=body.get("index")), params
    if key == "dataframe_records":
        return pd.DataFrame.from_records(body), params
    if isinstance(body, Mapping):
        return {k: np.asarray(v) for k, v in body.items()}, params
    if isinstance(body, list) and body and all(isinstance(v, Mapping) for v in body):
        return pd.DataFrame.from_records(body), params
    return (np.asarray(body) if isinstance(body, list) else body), params
