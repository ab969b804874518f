"""Signatures: inference in MLflow's JSON form, and enforcement at predict time."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from flowml.exceptions import FlowmlError
from flowml.models.enforce import enforce_params, enforce_schema
from flowml.models.signature import ColSpec, ModelSignature, Schema, TensorSpec, infer_signature


def test_infer_dataframe_matches_mlflow_json() -> None:
    import mlflow.models

    x_data = pd.DataFrame(
        {
            "a": [1.0, 2.0],
            "b": [1, 2],
            "s": ["x", "y"],
            "f": np.array([1, 2], dtype="float32"),
            "i": np.array([1, 2], dtype="int32"),
            "t": [True, False],
        }
    )
    y = np.array([0, 1])
    ours = infer_signature(x_data, y, params={"k": 2, "name": "x", "w": 0.5}).to_dict()
    theirs = mlflow.models.infer_signature(x_data, y, params={"k": 2, "name": "x", "w": 0.5}).to_dict()
    assert {k: json.loads(v) for k, v in ours.items() if v} == {
        k: json.loads(v) for k, v in theirs.items() if v
    }


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            np.zeros((3, 4), dtype="float32"),
            [{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}],
        ),
        (
            {"a": 1, "b": "x"},
            [
                {"type": "long", "name": "a", "required": True},
                {"type": "string", "name": "b", "required": True},
            ],
        ),
        ([{"a": 1.5}], [{"type": "double", "name": "a", "required": True}]),
        (["x", "y"], [{"type": "string", "required": True}]),
        (pd.Series([1, 2], name="z"), [{"type": "long", "name": "z", "required": True}]),
    ],
)
def test_infer_other_inputs(data: object, expected: list[dict[str, object]]) -> None:
    sig = infer_signature(data)
    assert sig.inputs is not None
    assert json.loads(sig.inputs.to_json()) == expected


def test_signature_round_trips_mlflow_strings() -> None:
    sig = ModelSignature(
        Schema([ColSpec("double", "a"), ColSpec("string", "b", required=False)]),
        Schema([TensorSpec("float64", (-1,))]),
    )
    assert ModelSignature.from_dict(sig.to_dict()) == sig


def test_missing_column_is_named() -> None:
    schema = Schema([ColSpec("double", "a"), ColSpec("long", "b")])
    with pytest.raises(FlowmlError) as err:
        enforce_schema(pd.DataFrame({"a": [1.0], "x": [1]}), schema)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "'b'" in err.value.message and "missing" in err.value.message


def test_safe_upcasts_allowed_unsafe_refused() -> None:
    schema = Schema([ColSpec("long", "i"), ColSpec("double", "d")])
    out = enforce_schema(pd.DataFrame({"i": np.array([1], "int32"), "d": np.array([2], "int32")}), schema)
    assert out["i"].dtype == np.int64 and out["d"].dtype == np.float64
    out = enforce_schema(pd.DataFrame({"i": [1], "d": np.array([2.0], "float32"), "extra": [0]}), schema)
    assert list(out.columns) == ["i", "d"] and out["d"].dtype == np.float64
    with pytest.raises(FlowmlError, match="Can not safely convert float64 to int64"):
        enforce_schema(pd.DataFrame({"i": [1.5], "d": [1.0]}), schema)
    with pytest.raises(FlowmlError, match="Can not safely convert"):
        enforce_schema(
            pd.DataFrame({"i": [1], "d": ["x"]}), Schema([ColSpec("long", "i"), ColSpec("double", "d")])
        )
    with pytest.raises(FlowmlError, match="float64 to float32"):
        enforce_schema(pd.DataFrame({"f": [1.0]}), Schema([ColSpec("float", "f")]))


def test_dict_and_records_inputs_become_frames() -> None:
    schema = Schema([ColSpec("double", "a"), ColSpec("string", "b")])
    assert enforce_schema({"a": 1.0, "b": "x"}, schema).shape == (1, 2)
    assert enforce_schema([{"a": 1.0, "b": "x"}, {"a": 2.0, "b": "y"}], schema).shape == (2, 2)


def test_tensor_enforcement() -> None:
    schema = Schema([TensorSpec("float64", (-1, 2))])
    assert enforce_schema(np.ones((3, 2), "float32"), schema).dtype == np.float64
    with pytest.raises(FlowmlError, match="Shape"):
        enforce_schema(np.ones((3, 3)), schema)
    with pytest.raises(FlowmlError, match="dtype"):
        enforce_schema(np.array([["a", "b"]]), schema)


def test_params_defaults_and_conversion() -> None:
    sig = infer_signature(pd.DataFrame({"a": [1]}), params={"k": 2, "flag": True})
    assert enforce_params(None, sig.params) == {"k": 2, "flag": True}
    assert enforce_params({"k": 5.0}, sig.params) == {"k": 5, "flag": True}
    with pytest.raises(FlowmlError, match="param 'k'"):
        enforce_params({"k": "nope"}, sig.params)
