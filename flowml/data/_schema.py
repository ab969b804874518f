"""Dataset schemas, inferred exactly as MLflow infers them for ``mlflow.data`` datasets.

flowml's model signatures (:mod:`flowml.models.signature`) approximate MLflow's inference; dataset
schemas are stored on runs and compared with MLflow's byte for byte, so this module follows MLflow's
rules to the letter: per-column ``required`` flags (``False`` when a value is missing), ``array`` and
``object`` types for list/dict values (merged item by item, ``any`` for missing values), and
tensor specs whose dtype drops the size of flexible types (``str``/``bytes``).

The results are :mod:`flowml.models.signature` objects (``Schema`` of ``ColSpec``/``TensorSpec``);
:func:`schema_json` writes them in MLflow's JSON form (a named tensor spec starts with its name).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeAlias

from flowml.exceptions import InvalidParameterValue

if TYPE_CHECKING:
    import pandas as pd

    from flowml.models.signature import ColSpec, Schema, TensorSpec

__all__ = ["TensorDatasetSchema", "frame_schema", "schema_dicts", "schema_json", "tensor_schema"]

_MULTIPLE_TYPES = "Expected all values in list to be of same type"


class _InferenceError(InvalidParameterValue):
    """The data cannot be described by a schema (MLflow then records no schema)."""


# -- MLflow's type lattice: a scalar type name, array, object, or "any" --------------------------
@dataclass(frozen=True)
class _AnyType:
    pass


@dataclass(frozen=True)
class _Array:
    items: _Type


@dataclass(frozen=True)
class _Property:
    name: str
    dtype: _Type
    required: bool = True


@dataclass(frozen=True)
class _Object:
    properties: tuple[_Property, ...]

    @staticmethod
    def of(properties: list[_Property]) -> _Object:
        return _Object(tuple(sorted(properties, key=lambda p: p.name)))


_Type: TypeAlias = str | _Array | _Object | _AnyType


def _type_dict(t: _Type) -> dict[str, Any]:
    if isinstance(t, str):
        return {"type": t}
    if isinstance(t, _Array):
        return {"type": "array", "items": _type_dict(t.items)}
    if isinstance(t, _Object):
        props = {p.name: {**_type_dict(p.dtype), "required": p.required} for p in t.properties}
        return {"type": "object", "properties": props}
    return {"type": "any"}


def _merge(current: _Type, other: _Type) -> _Type:
    """MLflow's ``_merge`` of an array/object/any type with the type of the next item."""
    if isinstance(current, _AnyType):
        if isinstance(other, _AnyType | str):
            return other
        return _merge(other, current)
    if isinstance(current, _Array):
        if isinstance(other, _AnyType) or current == other:
            return current
        if not isinstance(other, _Array):
            raise _InferenceError(f"Can't merge array with non-array type: {other}")
        if isinstance(current.items, str):
            if current.items == other.items or isinstance(other.items, _AnyType):
                return current
            raise _InferenceError(f"Array types are incompatible for {current} and {other}")
        return _Array(_merge(current.items, other.items))
    if isinstance(current, _Object):
        if isinstance(other, _AnyType):
            return _Object.of([replace(p, required=False) for p in current.properties])
        if not isinstance(other, _Object):
            raise _InferenceError(f"Can't merge object with non-object type: {other}")
        if current == other:
            return current
        mine = {p.name: p for p in current.properties}
        theirs = {p.name: p for p in other.properties}
        merged = [replace(mine[k], required=False) for k in mine.keys() - theirs.keys()]
        merged += [_merge_property(mine[k], theirs[k]) for k in mine.keys() & theirs.keys()]
        merged += [replace(theirs[k], required=False) for k in theirs.keys() - mine.keys()]
        return _Object.of(merged)
    raise _InferenceError(f"Type {current} cannot be merged")


def _merge_property(mine: _Property, theirs: _Property) -> _Property:
    required = mine.required and theirs.required
    if isinstance(mine.dtype, str):
        if mine.dtype == theirs.dtype or isinstance(theirs.dtype, _AnyType):
            return _Property(mine.name, mine.dtype, required)
        raise _InferenceError(f"Properties are incompatible for {mine.dtype} and {theirs.dtype}")
    return _Property(mine.name, _merge(mine.dtype, theirs.dtype), required)


# -- inference from values -------------------------------------------------------------------------
def _is_missing(value: Any) -> bool:
    import numpy as np
    import pandas as pd

    if isinstance(value, float):
        return bool(np.isnan(value))
    return value is None or value is pd.NA or value is pd.NaT


def _scalar_type(value: Any) -> str:
    import numpy as np

    by_type: dict[type, str] = {
        bool: "boolean",
        np.bool_: "boolean",
        int: "long",
        np.int64: "long",
        np.int32: "integer",
        float: "double",
        np.float64: "double",
        np.float32: "float",
        str: "string",
        np.str_: "string",
        object: "string",
        bytes: "binary",
        np.bytes_: "binary",
        bytearray: "binary",
    }
    found = by_type.get(type(value))
    if found is not None:
        return found
    if type(value) in (dt.date, dt.datetime, np.datetime64):
        return "datetime"
    raise _InferenceError(f"Data {value} is not one of the supported DataType")


def _value_type(value: Any) -> _Type | None:
    """The type of one value; ``None`` for an empty numpy array (undetermined)."""
    import numpy as np

    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        raise _InferenceError("A schema cannot be inferred from Pydantic objects")
    if _is_missing(value) or (isinstance(value, list | dict) and not value):
        return _AnyType()
    if isinstance(value, dict):
        props = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise _InferenceError(f"Expected name to be a string, got type {type(key).__name__}")
            item_type = _value_type(item)
            if item_type is None:
                raise _InferenceError("Dictionary value must not be an empty numpy array.")
            props.append(_Property(key, item_type, not isinstance(item_type, _AnyType)))
        return _Object.of(props)
    if isinstance(value, list | np.ndarray):
        return _sequence_type(value)
    return _scalar_type(value)


def _sequence_type(values: Any) -> _Array | None:
    result: _Array | None = None
    for value in values:
        found = _value_type(value)
        if found is None:
            continue
        if result is None:
            result = _Array(found)
        elif isinstance(result.items, str):
            if not isinstance(found, _AnyType) and found != result.items:
                raise _InferenceError(_MULTIPLE_TYPES)
        else:
            result = _Array(_merge(result.items, found))
    return result


def _numpy_dtype_type(dtype: Any) -> str:
    kind, size = dtype.kind, dtype.itemsize
    if kind == "b":
        return "boolean"
    if kind in ("i", "u"):
        if size < 4 or (kind == "i" and size == 4):
            return "integer"
        if size < 8 or (kind == "i" and size == 8):
            return "long"
    elif kind == "f":
        if size <= 4:
            return "float"
        if size <= 8:
            return "double"
    elif kind == "U":
        return "string"
    elif kind == "S":
        return "binary"
    elif kind == "M":
        return "datetime"
    raise _InferenceError(f"Unsupported numpy data type '{dtype}', kind '{kind}'")


def _column_type(column: pd.Series) -> _Type:
    import pandas as pd

    if column.dtype.kind == "O":
        column = column.infer_objects()
    if column.dtype.kind != "O":
        return _numpy_dtype_type(column.dtype)
    try:
        found = _value_type(column.to_list())
        if not isinstance(found, _Array):
            raise _InferenceError(f"Cannot infer an item type from {found}")
        return found.items
    except Exception as exc:  # as MLflow: any failure falls back to string for text columns
        if pd.api.types.is_string_dtype(column):
            return "string"
        raise _InferenceError(f"Failed to infer schema for pandas.Series {column.name!r}: {exc}") from exc


def _column_required(column: pd.Series) -> bool:
    import numpy as np

    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return True
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return not bool(np.isnan(column.to_numpy()).any())
    return not any(_is_missing(value) for value in column)


def _checked(specs: list[ColSpec] | list[TensorSpec]) -> Schema:
    """MLflow's ``Schema`` rules: non-empty, all named or all unnamed, no unnamed optional input."""
    from flowml.models.signature import Schema, TensorSpec

    if not specs:
        raise _InferenceError("Creating Schema with empty inputs is not allowed.")
    unnamed = [spec.name is None for spec in specs]
    if any(unnamed) and not all(unnamed):
        raise _InferenceError(
            "Creating Schema with a combination of named and unnamed inputs is not allowed."
        )
    if all(unnamed) and len(specs) > 1 and isinstance(specs[0], TensorSpec):
        raise _InferenceError("Creating Schema with multiple unnamed TensorSpecs is not supported.")
    if all(unnamed) and any(getattr(spec, "required", True) is False for spec in specs):
        raise _InferenceError("Creating Schema with unnamed optional inputs is not supported.")
    return Schema(specs)


def frame_schema(df: pd.DataFrame) -> Schema:
    """The column schema MLflow infers for a DataFrame (raises when MLflow would)."""
    import pandas as pd

    from flowml.models.signature import ColSpec

    specs: list[ColSpec] = []
    for label in df.columns:
        column = df[label]
        if not isinstance(column, pd.Series):
            raise _InferenceError(f"Expected pandas.Series for column {label!r}, got {type(column).__name__}")
        col_type = _column_type(column)
        spec_type = col_type if isinstance(col_type, str) else _type_dict(col_type)
        specs.append(ColSpec(spec_type, label, _column_required(column)))
    return _checked(specs)


def _tensor_spec(array: Any, name: Any = None) -> TensorSpec:
    from flowml.models.signature import TensorSpec

    if array.ndim == 0:
        raise _InferenceError("A 0-dimensional array has no variable dimension")
    dtype = array.dtype
    dtype_name = "str" if dtype.char == "U" else "bytes" if dtype.char == "S" else dtype.name
    return TensorSpec(dtype_name, (-1, *array.shape[1:]), name)


def tensor_schema(data: Any) -> Schema:
    """The tensor schema MLflow infers for a numpy array or a dict of arrays (raises otherwise)."""
    import numpy as np

    if isinstance(data, np.ndarray):
        return _checked([_tensor_spec(data)])
    if isinstance(data, dict) and all(isinstance(v, np.ndarray) for v in data.values()):
        return _checked([_tensor_spec(array, name) for name, array in data.items()])
    raise _InferenceError(f"Cannot infer a tensor schema from {type(data).__name__}")


def _spec_dict(spec: ColSpec | TensorSpec) -> dict[str, Any]:
    from flowml.models.signature import TensorSpec

    if isinstance(spec, TensorSpec):
        tensor = {"type": "tensor", "tensor-spec": {"dtype": spec.dtype, "shape": list(spec.shape)}}
        return tensor if spec.name is None else {"name": spec.name, **tensor}
    return spec.to_dict()


def schema_json(schema: Schema) -> str:
    """``schema`` as MLflow's ``Schema.to_json()`` writes it."""
    return json.dumps(schema_dicts(schema))


def schema_dicts(schema: Schema) -> list[dict[str, Any]]:
    """``schema`` as MLflow's ``Schema.to_dict()`` gives it."""
    return [_spec_dict(spec) for spec in schema.inputs]


class TensorDatasetSchema:
    """The schema of a tensor dataset: a features schema and an optional targets schema."""

    def __init__(self, features: Schema, targets: Schema | None = None) -> None:
        self.features = features
        self.targets = targets

    def to_dict(self) -> dict[str, Any]:
        """MLflow's form: ``{"mlflow_tensorspec": {"features": <json>, "targets": <json> | None}}``."""
        targets = schema_json(self.targets) if self.targets is not None else None
        return {"mlflow_tensorspec": {"features": schema_json(self.features), "targets": targets}}

    @classmethod
    def from_dict(cls, schema_dict: dict[str, Any]) -> TensorDatasetSchema:
        from flowml.models.signature import Schema

        if "mlflow_tensorspec" not in schema_dict:
            raise InvalidParameterValue(
                "TensorDatasetSchema dictionary is missing expected key 'mlflow_tensorspec'"
            )
        body = schema_dict["mlflow_tensorspec"]
        targets = body.get("targets")
        return cls(Schema.from_json(body["features"]), Schema.from_json(targets) if targets else None)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TensorDatasetSchema)
            and self.features == other.features
            and self.targets == other.targets
        )

    def __hash__(self) -> int:
        return hash((self.features, self.targets))

    def __repr__(self) -> str:
        return f"features:\n  {self.features!r}\ntargets:\n  {self.targets!r}\n"
