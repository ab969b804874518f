"""Interop with the real mlflow package, both ways, with equal predictions.

flowml → MLflow: a flowml-saved (and flowml-logged) model loads in ``mlflow.pyfunc.load_model``
(and the native MLflow flavor loaders). MLflow → flowml: an MLflow-saved model (sklearn with MLflow's
skops default and with cloudpickle, xgboost, a custom ``mlflow.pyfunc.PythonModel``) loads in flowml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import flowml
import flowml.pyfunc
import flowml.sklearn
import flowml.xgboost
from tests.models.model_classes import AddN, NoContext

pytest.importorskip("mlflow")
import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import mlflow.xgboost


def _same(a: Any, b: Any) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    else:
        np.testing.assert_allclose(np.asarray(a), np.asarray(b))


# -- flowml → MLflow -----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["cloudpickle", "skops"])
def test_flowml_sklearn_loads_in_mlflow(tmp_path: Path, binary: Any, fmt: str) -> None:
    x_data, y = binary
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(x_data, y)
    flowml.sklearn.save_model(pipe, tmp_path / "m", serialization_format=fmt, input_example=x_data.head(3))
    theirs = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    _same(theirs.predict(x_data), flowml.pyfunc.load_model(tmp_path / "m").predict(x_data))
    _same(mlflow.sklearn.load_model(str(tmp_path / "m")).predict(x_data), pipe.predict(x_data))
    assert theirs.metadata.signature.inputs.input_names() == ["a", "b", "c"]


@pytest.mark.parametrize("kind", ["classifier", "booster"])
def test_flowml_xgboost_loads_in_mlflow(tmp_path: Path, binary: Any, kind: str) -> None:
    import xgboost as xgb

    x_data, y = binary
    if kind == "classifier":
        model: Any = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(x_data, y)
    else:
        model = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(x_data, label=y), 5)
    flowml.xgboost.save_model(model, tmp_path / "m")
    _same(
        mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(x_data),
        flowml.pyfunc.load_model(tmp_path / "m").predict(x_data),
    )
    assert type(mlflow.xgboost.load_model(str(tmp_path / "m"))) is type(model)


def test_flowml_custom_model_loads_in_mlflow(tmp_path: Path) -> None:
    x_data = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    sig = flowml.models.infer_signature(x_data, x_data, params={"k": 0})
    flowml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1), signature=sig, input_example=x_data)
    theirs = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    ours = flowml.pyfunc.load_model(tmp_path / "m")
    _same(theirs.predict(x_data), ours.predict(x_data))
    _same(theirs.predict(x_data, params={"k": 5}), ours.predict(x_data, params={"k": 5}))
    _same(theirs.predict(x_data, params={"k": 5}), x_data + 6)
    flowml.pyfunc.save_model(tmp_path / "n", python_model=NoContext())
    _same(mlflow.pyfunc.load_model(str(tmp_path / "n")).predict(x_data), x_data * 2)


def test_flowml_logged_model_dir_loads_in_mlflow(models_env: str, binary: Any) -> None:
    x_data, y = binary
    model = LogisticRegression().fit(x_data, y)
    with flowml.start_run() as run:
        info = flowml.sklearn.log_model(model, name="model", input_example=x_data.head(2))
    local = flowml.FlowmlClient().download_logged_model_artifacts(info.model_id)
    theirs = mlflow.pyfunc.load_model(local)
    _same(theirs.predict(x_data), model.predict(x_data))
    assert theirs.metadata.run_id == run.info.run_id
    assert theirs.metadata.model_id == theirs.metadata.model_uuid == info.model_id


# -- MLflow → flowml -----------------------------------------------------------------------------
def test_mlflow_sklearn_skops_default_loads_in_flowml(tmp_path: Path, binary: Any) -> None:
    x_data, y = binary
    model = LogisticRegression().fit(x_data, y)
    mlflow.sklearn.save_model(model, str(tmp_path / "m"), input_example=x_data.head(3))
    assert (tmp_path / "m" / "model.skops").exists()  # MLflow 3.17's default format
    ours = flowml.pyfunc.load_model(tmp_path / "m")
    assert ours.integrity == "unverified"
    _same(ours.predict(x_data), mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(x_data))
    _same(flowml.sklearn.load_model(tmp_path / "m").predict(x_data), model.predict(x_data))
    _same(ours.smoke_test(), model.predict(x_data.head(3)))


def test_mlflow_sklearn_cloudpickle_loads_in_flowml(tmp_path: Path, binary: Any) -> None:
    x_data, y = binary
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x_data, y)
    mlflow.sklearn.save_model(model, str(tmp_path / "m"), serialization_format="cloudpickle")
    _same(
        flowml.pyfunc.load_model(tmp_path / "m").predict(x_data),
        mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(x_data),
    )


@pytest.mark.parametrize("kind", ["regressor", "booster"])
def test_mlflow_xgboost_loads_in_flowml(tmp_path: Path, binary: Any, kind: str) -> None:
    import xgboost as xgb

    x_data, y = binary
    if kind == "regressor":
        model: Any = xgb.XGBRegressor(n_estimators=5).fit(x_data, y)
    else:
        model = xgb.train({}, xgb.DMatrix(x_data, label=y), 5)
    mlflow.xgboost.save_model(model, str(tmp_path / "m"), input_example=x_data.head(2))
    ours = flowml.pyfunc.load_model(tmp_path / "m")
    _same(ours.predict(x_data), mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(x_data))
    assert type(flowml.xgboost.load_model(tmp_path / "m")) is type(model)


def test_mlflow_custom_python_model_loads_in_flowml(tmp_path: Path) -> None:
    from tests.models.mlflow_classes import MlflowAddN

    x_data = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    mlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=MlflowAddN(3.0), input_example=x_data)
    ours = flowml.pyfunc.load_model(tmp_path / "m")
    _same(ours.predict(x_data), mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(x_data))
    _same(ours.predict(x_data), x_data + 3.0)
    assert ours.metadata.mlflow_version == mlflow.__version__
    with pytest.raises(flowml.exceptions.FlowmlError, match="missing inputs"):
        ours.predict(x_data[["a"]])  # MLflow's signature is enforced by flowml
