"""flowml.sklearn / flowml.xgboost: MLflow's layout, native objects back, pyfunc loading, runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import flowml
import flowml.pyfunc
import flowml.sklearn
import flowml.xgboost
from flowml.exceptions import FlowmlError


def test_sklearn_layout_is_mlflows(tmp_path: Path, binary: Any) -> None:
    x_data, y = binary
    model = LogisticRegression().fit(x_data, y)
    flowml.sklearn.save_model(model, tmp_path / "m", input_example=x_data.head(3))
    mlmodel = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"] == {
        "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
        "loader_module": "mlflow.sklearn",
        "model_path": "model.pkl",
        "predict_fn": "predict",
        "python_version": mlmodel["flavors"]["python_function"]["python_version"],
    }
    import sklearn

    assert mlmodel["flavors"]["sklearn"] == {
        "code": None,
        "pickled_model": "model.pkl",
        "serialization_format": "cloudpickle",
        "sklearn_version": sklearn.__version__,
        "skops_trusted_types": None,
    }
    assert json.loads(mlmodel["signature"]["inputs"])[0] == {"type": "double", "name": "a", "required": True}
    assert f"scikit-learn=={sklearn.__version__}" in (tmp_path / "m" / "requirements.txt").read_text()


@pytest.mark.parametrize("fmt", ["cloudpickle", "pickle", "skops"])
def test_sklearn_round_trip(tmp_path: Path, binary: Any, fmt: str) -> None:
    x_data, y = binary
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(x_data, y)
    flowml.sklearn.save_model(pipe, tmp_path / "m", serialization_format=fmt)
    native = flowml.sklearn.load_model(tmp_path / "m")
    assert type(native).__name__ == "Pipeline"
    np.testing.assert_array_equal(native.predict(x_data), pipe.predict(x_data))
    np.testing.assert_array_equal(
        flowml.pyfunc.load_model(tmp_path / "m").predict(x_data), pipe.predict(x_data)
    )


def test_sklearn_skops_refuses_untrusted_types(tmp_path: Path, binary: Any) -> None:
    x_data, y = binary
    forest = RandomForestRegressor(n_estimators=3).fit(x_data, y)
    with pytest.raises(FlowmlError, match="skops does not trust"):
        flowml.sklearn.save_model(forest, tmp_path / "m", serialization_format="skops")
    flowml.sklearn.save_model(
        forest, tmp_path / "m", serialization_format="skops", skops_trusted_types=["sklearn.tree._tree.Tree"]
    )
    np.testing.assert_allclose(
        flowml.sklearn.load_model(tmp_path / "m").predict(x_data), forest.predict(x_data)
    )


def test_sklearn_predict_proba_fn(tmp_path: Path, binary: Any) -> None:
    x_data, y = binary
    model = LogisticRegression().fit(x_data, y)
    flowml.sklearn.save_model(model, tmp_path / "m", pyfunc_predict_fn="predict_proba")
    np.testing.assert_allclose(
        flowml.pyfunc.load_model(tmp_path / "m").predict(x_data), model.predict_proba(x_data)
    )


def test_sklearn_log_model(models_env: str, binary: Any) -> None:
    x_data, y = binary
    model = LogisticRegression().fit(x_data, y)
    with flowml.start_run():
        info = flowml.sklearn.log_model(model, name="clf", input_example=x_data.head(2))
    loaded = flowml.sklearn.load_model(info.model_uri)
    np.testing.assert_array_equal(loaded.predict(x_data), model.predict(x_data))
    pyf = flowml.pyfunc.load_model(info.model_uri)
    assert pyf.integrity == "manifest"
    np.testing.assert_array_equal(pyf.smoke_test(), model.predict(x_data.head(2)))


@pytest.mark.parametrize("fmt", ["ubj", "json"])
def test_xgboost_sklearn_api_round_trip(tmp_path: Path, binary: Any, fmt: str) -> None:
    import xgboost as xgb

    x_data, y = binary
    model = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(x_data, y)
    flowml.xgboost.save_model(model, tmp_path / "m", model_format=fmt, input_example=x_data.head(2))
    mlmodel = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    assert mlmodel["flavors"]["xgboost"] == {
        "code": None,
        "data": f"model.{fmt}",
        "model_class": "xgboost.sklearn.XGBClassifier",
        "model_format": fmt,
        "xgb_version": xgb.__version__,
    }
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.xgboost"
    assert mlmodel["flavors"]["python_function"]["data"] == f"model.{fmt}"
    assert not list((tmp_path / "m").glob("*.pkl"))  # XGBoost's own format, never a pickle
    native = flowml.xgboost.load_model(tmp_path / "m")
    assert isinstance(native, xgb.XGBClassifier)
    np.testing.assert_array_equal(native.predict_proba(x_data), model.predict_proba(x_data))
    np.testing.assert_array_equal(
        flowml.pyfunc.load_model(tmp_path / "m").predict(x_data), model.predict(x_data)
    )


def test_xgboost_booster_log_and_load(models_env: str, binary: Any) -> None:
    import xgboost as xgb

    x_data, y = binary
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x_data, label=y), 4)
    with flowml.start_run():
        info = flowml.xgboost.log_model(booster, name="booster")
    native = flowml.xgboost.load_model(info.model_uri)
    assert isinstance(native, xgb.Booster)
    np.testing.assert_allclose(native.predict(xgb.DMatrix(x_data)), booster.predict(xgb.DMatrix(x_data)))
    np.testing.assert_allclose(
        flowml.pyfunc.load_model(info.model_uri).predict(x_data), booster.predict(xgb.DMatrix(x_data))
    )


def test_xgboost_refuses_foreign_model_class(tmp_path: Path, binary: Any) -> None:
    import xgboost as xgb

    x_data, y = binary
    flowml.xgboost.save_model(xgb.XGBRegressor(n_estimators=2).fit(x_data, y), tmp_path / "m")
    mlmodel_path = tmp_path / "m" / "MLmodel"
    mlmodel = yaml.safe_load(mlmodel_path.read_text())
    mlmodel["flavors"]["xgboost"]["model_class"] = "os.system"
    mlmodel_path.write_text(yaml.safe_dump(mlmodel))
    (tmp_path / "m" / "flowml_checksums.json").unlink()  # pretend it is an unverifiable model
    with pytest.raises(FlowmlError, match="non-xgboost class"):
        flowml.xgboost.load_model(tmp_path / "m")


def test_loading_wrong_flavor_is_clear(tmp_path: Path, binary: Any) -> None:
    x_data, y = binary
    flowml.sklearn.save_model(LogisticRegression().fit(x_data, y), tmp_path / "m")
    with pytest.raises(FlowmlError, match='does not have the "xgboost" flavor'):
        flowml.xgboost.load_model(tmp_path / "m")
