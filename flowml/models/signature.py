"""Model signatures in MLflow's JSON schema form, inference from data, and enforcement at predict time.

A :class:`ModelSignature` holds an input :class:`Schema` (named/unnamed :class:`ColSpec` columns or
:class:`TensorSpec` tensors), an output schema and a :class:`ParamSchema`. In the ``MLmodel`` file each
part is stored, as MLflow stores it, as a JSON *string* (``to_dict``/``from_dict``).

Enforcement follows MLflow's rules (``mlflow/models/utils.py::_enforce_mlflow_datatype``): object →
string, int → long and float → double upcasts, (u)int of at most 6 bytes → double, 0/1 int64 →
float/double; anything else (double → long, float64 → float32...) is refused with
``INVALID_PARAMETER_VALUE``; a missing required column is named in the error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flowml.exceptions import InvalidParameterValue

__all__ = [
    "ColSpec",
    "ModelSignature",
    "ParamSchema",
    "ParamSpec",
    "Schema",
    "TensorSpec",
    "enforce_params",
    "enforce_schema",
    "infer_schema",
    "infer_signature",
]

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


@dataclass(frozen=True)
class ColSpec:
    """A column: ``type`` is an MLflow DataType name, or a dict for array/object/map/any types."""

    type: str | dict[str, Any]
    name: str | None = None
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.type) if isinstance(self.type, dict) else {"type": self.type}
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColSpec:
        rest = {k: v for k, v in d.items() if k not in ("name", "required")}
        col_type: str | dict[str, Any] = rest["type"] if set(rest) == {"type"} else rest
        return cls(col_type, d.get("name"), bool(d.get("required", True)))


@dataclass(frozen=True)
class TensorSpec:
    """A tensor: numpy ``dtype`` name and ``shape`` (-1 for a variable dimension)."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "tensor",
            "tensor-spec": {"dtype": self.dtype, "shape": list(self.shape)},
        }
        if self.name is not None:
            out["name"] = self.name
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TensorSpec:
        spec = d["tensor-spec"]
        return cls(str(spec["dtype"]), tuple(int(s) for s in spec["shape"]), d.get("name"))


@dataclass(frozen=True)
class Schema:
    inputs: tuple[ColSpec | TensorSpec, ...]

    def __init__(self, inputs: Sequence[ColSpec | TensorSpec]) -> None:
        object.__setattr__(self, "inputs", tuple(inputs))
        kinds = {isinstance(i, TensorSpec) for i in self.inputs}
        if len(kinds) > 1:
            raise InvalidParameterValue("A schema holds either column specs or tensor specs, not both")

    def is_tensor_spec(self) -> bool:
        return bool(self.inputs) and isinstance(self.inputs[0], TensorSpec)

    def has_input_names(self) -> bool:
        return bool(self.inputs) and all(i.name is not None for i in self.inputs)

    def input_names(self) -> list[str | None]:
        return [i.name for i in self.inputs]

    def to_json(self) -> str:
        return json.dumps([i.to_dict() for i in self.inputs])

    @classmethod
    def from_json(cls, text: str) -> Schema:
        items = json.loads(text)
        return cls(
            [TensorSpec.from_dict(d) if d.get("type") == "tensor" else ColSpec.from_dict(d) for d in items]
        )


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str
    default: Any
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "default": self.default,
            "shape": list(self.shape) if self.shape is not None else None,
            "type": self.type,
        }


@dataclass(frozen=True)
class ParamSchema:
    params: tuple[ParamSpec, ...] = ()

    def to_json(self) -> str:
        return json.dumps([p.to_dict() for p in self.params])

    @classmethod
    def from_json(cls, text: str) -> ParamSchema:
        return cls(
            tuple(
                ParamSpec(
                    d["name"], d["type"], d.get("default"), tuple(d["shape"]) if d.get("shape") else None
                )
                for d in json.loads(text)
            )
        )


@dataclass(frozen=True)
class ModelSignature:
    inputs: Schema | None = None
    outputs: Schema | None = None
    params: ParamSchema | None = field(default=None)

    def to_dict(self) -> dict[str, str | None]:
        """MLflow's form: each part a JSON string (or None)."""
        return {
            "inputs": self.inputs.to_json() if self.inputs is not None else None,
            "outputs": self.outputs.to_json() if self.outputs is not None else None,
            "params": self.params.to_json() if self.params is not None else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSignature:
        return cls(
            Schema.from_json(d["inputs"]) if d.get("inputs") else None,
            Schema.from_json(d["outputs"]) if d.get("outputs") else None,
            ParamSchema.from_json(d["params"]) if d.get("params") else None,
        )


# -- inference ---------------------------------------------------------------------------------
def _type_of_dtype(dtype: Any, values: Any = None) -> str:
    import numpy as np
    import pandas as pd

    if isinstance(dtype, pd.StringDtype):
        return "string"
    if isinstance(dtype, pd.CategoricalDtype):
        return _type_of_dtype(dtype.categories.dtype, dtype.categories)
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        dtype = np.dtype(getattr(dtype, "numpy_dtype", object))
    kind = np.dtype(dtype).kind
    size = np.dtype(dtype).itemsize
    if kind == "b":
        return "boolean"
    if kind == "i":
        return "long" if size == 8 else "integer"
    if kind == "u":
        return "integer" if size <= 2 else "long"
    if kind == "f":
        return "float" if size <= 4 else "double"
    if kind == "M":
        return "datetime"
    if kind in ("U",):
        return "string"
    if kind == "S":
        return "binary"
    if kind == "O" and values is not None:
        return _type_of_objects(list(values))
    raise InvalidParameterValue(f"Unsupported data type {dtype} for a model signature")


def _type_of_value(value: Any) -> str:
    import numpy as np

    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, int | np.integer):
        return "long" if not isinstance(value, np.integer) else _type_of_dtype(np.asarray(value).dtype)
    if isinstance(value, float | np.floating):
        return "double" if not isinstance(value, np.floating) else _type_of_dtype(np.asarray(value).dtype)
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes | bytearray):
        return "binary"
    raise InvalidParameterValue(f"Unsupported value of type {type(value).__name__} for a model signature")


def _type_of_objects(values: list[Any]) -> str:
    types = {_type_of_value(v) for v in values if v is not None}
    if not types:
        return "string"
    if len(types) == 1:
        return types.pop()
    if types <= {"long", "double", "integer", "float"}:
        return "double"
    raise InvalidParameterValue(f"Mixed value types {sorted(types)} in one column cannot form a signature")


def _tensor_spec(array: Any, name: str | None = None) -> TensorSpec:
    import numpy as np

    arr = np.asarray(array)
    dtype = arr.dtype
    if dtype.kind == "U":
        dtype = np.dtype(object)
    if dtype.kind in ("O", "S"):
        dtype = np.dtype(object)
    shape = (-1, *arr.shape[1:]) if arr.ndim else ()
    return TensorSpec(dtype.name, shape, name)


def infer_schema(data: Any) -> Schema:
    """The schema of ``data``: a DataFrame/Series/dict/list gives columns, a numpy array a tensor."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return Schema([ColSpec(_type_of_dtype(data[c].dtype, data[c]), str(c)) for c in data.columns])
    if isinstance(data, pd.Series):
        name = None if data.name is None else str(data.name)
        return Schema([ColSpec(_type_of_dtype(data.dtype, data), name)])
    if isinstance(data, np.ndarray):
        return Schema([_tensor_spec(data)])
    if isinstance(data, Mapping):
        if data and all(isinstance(v, np.ndarray) for v in data.values()):
            return Schema([_tensor_spec(v, str(k)) for k, v in data.items()])
        specs = []
        for key, value in data.items():
            if isinstance(value, list | tuple | np.ndarray):
                specs.append(ColSpec(_type_of_objects(list(value)), str(key)))
            else:
                specs.append(ColSpec(_type_of_value(value), str(key)))
        return Schema(specs)
    if isinstance(data, list | tuple):
        if data and all(isinstance(v, Mapping) for v in data):
            return infer_schema(pd.DataFrame.from_records(list(data)))
        if data and all(isinstance(v, list | tuple) for v in data):
            return Schema([_tensor_spec(np.asarray(data))])
        return Schema([ColSpec(_type_of_objects(list(data)))])
    if isinstance(data, str | bytes | int | float | bool):
        return Schema([ColSpec(_type_of_value(data))])
    raise InvalidParameterValue(f"Cannot infer a schema from data of type {type(data).__name__}")


def _infer_params(params: Mapping[str, Any]) -> ParamSchema:
    specs = []
    for key, value in params.items():
        if isinstance(value, list | tuple):
            specs.append(ParamSpec(key, _type_of_objects(list(value)), list(value), (-1,)))
        else:
            specs.append(ParamSpec(key, _type_of_value(value), value, None))
    return ParamSchema(tuple(specs))


def infer_signature(
    model_input: Any = None, model_output: Any = None, params: Mapping[str, Any] | None = None
) -> ModelSignature:
    """MLflow's ``infer_signature``: schemas from example input/output and a params schema."""
    return ModelSignature(
        infer_schema(model_input) if model_input is not None else None,
        infer_schema(model_output) if model_output is not None else None,
        _infer_params(params) if params else None,
    )


# -- enforcement -------------------------------------------------------------------------------
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
