"""Input and params enforcement against a signature at predict time, with MLflow's rules.

``mlflow/models/utils.py::_enforce_mlflow_datatype``: object → string, int → long and float → double
upcasts, (u)int of at most 6 bytes → double, 0/1 int64 → float/double; anything else (double → long,
float64 → float32...) is refused with ``INVALID_PARAMETER_VALUE``; a missing required column is named
in the error; extra columns are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowml.exceptions import InvalidParameterValue
from flowml.models.signature import ColSpec, ParamSchema, Schema, TensorSpec

__all__ = ["enforce_params", "enforce_schema"]

#: MLflow DataType name -> numpy dtype name
_NUMPY_OF: dict[str, str] = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "string": "object",
    "binary": "object",
    "datetime": "datetime64[ns]",
}


# -- columns -------------------------------------------------------------------------------
def _incompatible(name: str, src: Any, dst: Any, hint: str = "") -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Incompatible input types for column {name}. Can not safely convert {src} to {dst}.{hint}"
    )


def _enforce_column(name: str, values: Any, col_type: str) -> Any:
    import numpy as np
    import pandas as pd

    if values.dtype == object and col_type not in ("binary", "string"):
        values = values.infer_objects()
    if col_type == "string" and (values.dtype == object or isinstance(values.dtype, pd.StringDtype)):
        return values
    if col_type == "binary" and (values.dtype == object or isinstance(values.dtype, pd.StringDtype)):
        return values
    if col_type == "boolean" and values.dtype == object:
        return values
    target = np.dtype(_NUMPY_OF[col_type])
    if values.dtype == target:
        return values
    if col_type == "datetime":
        try:
            return values.astype(np.dtype("datetime64[ns]"))
        except (TypeError, ValueError) as exc:
            raise InvalidParameterValue(
                f"Failed to convert column {name} from type {values.dtype} to datetime."
            ) from exc
    src = values.dtype
    if isinstance(src, pd.api.extensions.ExtensionDtype):
        raise _incompatible(name, src, target)
    if src.kind == target.kind:
        upcast = src.itemsize <= target.itemsize
    elif src.kind == "u" and target.kind == "i":
        upcast = src.itemsize < target.itemsize
    elif src.kind in ("i", "u") and target == np.float64:
        upcast = src.itemsize <= 6
    else:
        upcast = False
    if upcast:
        return values.astype(target)
    if src == np.int64 and target.kind == "f" and all(pd.isnull(x) or x in (0, 1) for x in values):
        return values.astype(target)
    hint = ""
    if src.kind == "f" and target.kind in ("i", "u") and values.hasnans:
        hint = (
            " Hint: the type mismatch is likely caused by missing values. Integer columns in python "
            "can not represent missing values and are therefore encoded as floats."
        )
    raise _incompatible(name, src, target, hint)


def _as_frame(data: Any, schema: Schema) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return (
            data.to_frame() if data.name is not None and schema.has_input_names() else pd.DataFrame({0: data})
        )
    if isinstance(data, Mapping):
        if all(np.isscalar(v) or v is None for v in data.values()):
            return pd.DataFrame([dict(data)])
        return pd.DataFrame(dict(data))
    if isinstance(data, list | tuple) and data and all(isinstance(v, Mapping) for v in data):
        return pd.DataFrame.from_records(list(data))
    arr = np.asarray(data)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1) if len(schema.inputs) == 1 else arr.reshape(1, -1)
    if arr.ndim != 2:
        raise InvalidParameterValue(f"Cannot apply a column-based signature to an input of shape {arr.shape}")
    names = schema.input_names()
    if schema.has_input_names() and arr.shape[1] == len(names):
        return pd.DataFrame(arr, columns=names)
    return pd.DataFrame(arr)


def _enforce_tensor(data: Any, spec: TensorSpec) -> Any:
    import numpy as np
    import pandas as pd

    arr = data.to_numpy() if isinstance(data, pd.DataFrame | pd.Series) else np.asarray(data)
    target = np.dtype(spec.dtype)
    if arr.dtype != target:
        src = arr.dtype
        ok = (src.kind == target.kind and src.itemsize <= target.itemsize) or (
            src.kind in ("i", "u") and target == np.float64 and src.itemsize <= 6
        )
        if target.kind == "O" and src.kind in ("U", "S", "O"):
            ok = True
        if not ok:
            raise InvalidParameterValue(
                f"dtype of input {src} does not match expected dtype {target.name}"
                + (f" for tensor {spec.name!r}" if spec.name else "")
            )
        arr = arr.astype(target)
    shape = spec.shape
    if len(shape) != arr.ndim or any(s != -1 and s != a for s, a in zip(shape, arr.shape, strict=False)):
        raise InvalidParameterValue(
            f"Shape of input {arr.shape} does not match expected shape {tuple(shape)}"
            + (f" for tensor {spec.name!r}" if spec.name else "")
        )
    return arr


def enforce_schema(data: Any, schema: Schema) -> Any:
    """Check and convert ``data`` against ``schema`` (MLflow's rules); raise INVALID_PARAMETER_VALUE."""
    if schema.is_tensor_spec():
        specs = [s for s in schema.inputs if isinstance(s, TensorSpec)]
        if len(specs) == 1 and not isinstance(data, Mapping):
            return _enforce_tensor(data, specs[0])
        if not isinstance(data, Mapping):
            raise InvalidParameterValue("This model expects a dict of named tensors as input")
        missing = [s.name for s in specs if s.name not in data]
        if missing:
            raise InvalidParameterValue(f"Model is missing inputs {missing}.")
        return {s.name: _enforce_tensor(data[s.name], s) for s in specs if s.name is not None}
    frame = _as_frame(data, schema)
    cols = [s for s in schema.inputs if isinstance(s, ColSpec)]
    if schema.has_input_names():
        present = {str(c) for c in frame.columns}
        missing = [s.name for s in cols if s.required and s.name not in present]
        if missing:
            extra = sorted(present - {s.name for s in cols if s.name})
            message = f"Model is missing inputs {missing}."
            if extra:
                message += f" Note that there were extra inputs: {extra}."
            raise InvalidParameterValue(message)
        frame = frame.rename(columns={c: str(c) for c in frame.columns})
        out = {}
        for spec in cols:
            assert spec.name is not None
            if spec.name not in frame:
                continue
            if isinstance(spec.type, str):
                out[spec.name] = _enforce_column(spec.name, frame[spec.name], spec.type)
            else:
                out[spec.name] = frame[spec.name]
        import pandas as pd

        return pd.DataFrame(out, index=frame.index)
    if len(frame.columns) < len(cols):
        raise InvalidParameterValue(
            f"Model inference is missing inputs. The model signature declares {len(cols)} inputs but the "
            f"provided value only has {len(frame.columns)} inputs."
        )
    frame = frame.copy()
    for i, spec in enumerate(cols):
        if isinstance(spec.type, str):
            column = frame.columns[i]
            frame[column] = _enforce_column(str(column), frame[column], spec.type)
    return frame


_PY_OF_PARAM = {"boolean": bool, "integer": int, "long": int, "float": float, "double": float, "string": str}


def enforce_params(params: Mapping[str, Any] | None, schema: ParamSchema | None) -> dict[str, Any] | None:
    """Fill defaults and convert params as MLflow does; unknown params are ignored (with no error)."""
    if schema is None:
        return dict(params) if params else None
    given = dict(params or {})
    out: dict[str, Any] = {}
    for spec in schema.params:
        if spec.name not in given:
            out[spec.name] = spec.default
            continue
        value = given[spec.name]
        py = _PY_OF_PARAM.get(spec.type)
        try:
            if spec.shape is not None:
                out[spec.name] = [py(v) if py else v for v in value]
            elif (py is bool and not isinstance(value, bool)) or (
                py is int and isinstance(value, float) and not value.is_integer()
            ):
                raise TypeError
            else:
                out[spec.name] = py(value) if py else value
        except (TypeError, ValueError) as exc:
            raise InvalidParameterValue(
                f"Failed to convert value {value!r} of param {spec.name!r} to type {spec.type}"
            ) from exc
    return out
