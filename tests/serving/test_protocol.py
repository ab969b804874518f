"""The scoring protocol as pure functions (no server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from flowml.serving import (
    ScoringError,
    UnsupportedMediaType,
    error_response,
    invoke,
    model_predict,
    parse_content_type,
    parse_csv_input,
    parse_json_input,
    serialize_predictions,
)


@pytest.mark.parametrize(
    ("header", "mime"),
    [
        ("application/json", "application/json"),
        ("Application/JSON; charset=UTF-8", "application/json"),
        ("text/csv", "text/csv"),
        ('text/csv; charset="utf-8"', "text/csv"),
    ],
)
def test_content_type_ok(header: str, mime: str) -> None:
    assert parse_content_type(header) == mime


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "text/plain",
        "application/json; format=pandas-split",
        "text/csv; charset=latin-1",
        "application/vnd.apache.parquet",
    ],
)
def test_content_type_415(header: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        parse_content_type(header)
    assert info.value.http_status == 415


def test_json_formats_agree() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    split, _ = parse_json_input(
        json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 3], [2.0, 4]]}})
    )
    records, _ = parse_json_input(json.dumps({"dataframe_records": [{"a": 1.0, "b": 3}, {"a": 2.0, "b": 4}]}))
    instances, _ = parse_json_input(json.dumps({"instances": [{"a": 1.0, "b": 3}, {"a": 2.0, "b": 4}]}))
    pd.testing.assert_frame_equal(split, frame)
    pd.testing.assert_frame_equal(records, frame)
    pd.testing.assert_frame_equal(instances, frame)
    columnar, params = parse_json_input(json.dumps({"inputs": {"a": [1.0, 2.0]}, "params": {"k": 1}}))
    assert params == {"k": 1}
    np.testing.assert_array_equal(columnar["a"], [1.0, 2.0])
    tensor, _ = parse_json_input(b'{"inputs": [[1, 2], [3, 4]]}')
    assert tensor.shape == (2, 2)


@pytest.mark.parametrize(
    "body",
    [
        "{oops",
        "[]",
        "{}",
        '{"params": {}}',
        '{"inputs": 1, "instances": 1}',
        '{"dataframe_split": [1]}',
        '{"dataframe_records": 1}',
        '{"inputs": [1], "params": [1]}',
        '{"dataframe_split": {"data": [[1]], "x": 1}}',
    ],
)
def test_json_bad_request(body: str) -> None:
    with pytest.raises(ScoringError) as info:
        parse_json_input(body)
    assert info.value.http_status == 400
    assert info.value.error_code == "BAD_REQUEST"


def test_csv_dtypes_from_schema() -> None:
    from flowml.models.signature import ColSpec, Schema

    schema = Schema([ColSpec("double", "x"), ColSpec("long", "n"), ColSpec("string", "s")])
    frame = parse_csv_input(b"x,n,s\n1,2,a\n3,4,b\n", schema)
    assert frame.dtypes["x"] == np.float64
    assert frame.dtypes["n"] == np.int64
    with pytest.raises(ScoringError):
        parse_csv_input(b"x,n\nabc,1\n", schema)


def test_serialize() -> None:
    assert orjson.loads(serialize_predictions(np.array([1, 2]))) == {"predictions": [1, 2]}
    assert orjson.loads(serialize_predictions(pd.DataFrame({"a": [1.5]}))) == {"predictions": [{"a": 1.5}]}
    assert orjson.loads(serialize_predictions(pd.Series([1, 2]))) == {"predictions": [1, 2]}
    assert orjson.loads(serialize_predictions(np.array(["x", "y"]))) == {"predictions": ["x", "y"]}
    assert orjson.loads(serialize_predictions({"p": np.float32(0.5)})) == {"predictions": {"p": 0.5}}


def test_unexpected_error_hides_trace() -> None:
    status, body = error_response(RuntimeError("boom"))
    error = orjson.loads(body)
    assert status == 400
    assert error["error_code"] == "BAD_REQUEST"
    assert "boom" in error["message"]
    assert "Traceback" not in error["message"]


@pytest.fixture
def xgb_model(tmp_path: Path) -> Any:
    import xgboost as xgb

    import flowml.xgboost
    from flowml.models import infer_signature
    from flowml.pyfunc import load_model

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(100, 3)), columns=["a", "b", "c"])
    model = xgb.XGBRegressor(n_estimators=5).fit(frame, frame.a * 2)
    flowml.xgboost.save_model(model, tmp_path / "m", signature=infer_signature(frame, model.predict(frame)))
    return load_model(tmp_path / "m"), frame


def test_fast_path_equals_enforced_predict(xgb_model: Any) -> None:
    model, frame = xgb_model
    np.testing.assert_array_equal(model_predict(model, frame), model.predict(frame))
    ints = pd.DataFrame({"a": [1], "b": [0], "c": [1]})  # int64 → double: goes through enforcement
    np.testing.assert_allclose(model_predict(model, ints), model.predict(ints))
    reordered = frame[["c", "a", "b"]]
    np.testing.assert_array_equal(model_predict(model, reordered), model.predict(frame))


def test_invoke(xgb_model: Any) -> None:
    model, frame = xgb_model
    body = json.dumps({"dataframe_split": json.loads(frame.head(3).to_json(orient="split", index=False))})
    status, payload = invoke(model, body.encode(), "application/json")
    assert status == 200
    np.testing.assert_allclose(orjson.loads(payload)["predictions"], model.predict(frame.head(3)), rtol=1e-6)
    status, payload = invoke(model, b'{"dataframe_records": [{"a": 1.0}]}', "application/json")
    assert status == 400
    assert "'b'" in orjson.loads(payload)["message"]
    status, _ = invoke(model, body.encode(), "text/plain")
    assert status == 415
