"""Model signatures in MLflow's JSON schema form, inference from data, and enforcement at predict time.

A :class:`ModelSignature` holds an input :class:`Schema` (named/unnamed :class:`ColSpec` columns or
:class:`TensorSpec` tensors), an output schema and a :class:`ParamSchema`. In the ``MLmodel`` file each
part is stored, as MLflow stores it, as a JSON *string* (``to_dict``/``from_dict``).

Enforcement at predict time lives in :mod:`flowml.models.enforce`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
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
    "infer_schema",
    "infer_signature",
    "infer_signature_from_predict",
]


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


def infer_signature_from_predict(predict: Callable[[Any], Any], example: Any) -> ModelSignature | None:
    """The signature of ``predict`` on ``example``; ``None`` (with a warning) when that fails.

    Best effort, as in MLflow: a model that cannot predict on its own input example still saves.
    """
    import logging

    try:
        return infer_signature(example, predict(example))
    except Exception as exc:  # noqa: BLE001 - best effort, as MLflow
        logging.getLogger(__name__).warning("Could not infer the model signature: %s", exc)
        return None
