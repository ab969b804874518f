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

mlflow = pytest.importorskip("mlflow")
import mlflow.pyfunc  # noqa: E402
import mlflow.sklearn  # noqa: E402
import mlflow.xgboost  # noqa: E402


def _same(a: Any, b: Any) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
    else:
        np.testing.assert_allclose(np.asarray(a), np.asarray(b))


# -- flowml → MLflow -----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["cloudpickle", "skops"])
def test_flowml_sklearn_loads_in_mlflow(tmp_path: Path, binary: Any, fmt: str) -> None:
    X, y = binary
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    flowml.sklearn.save_model(pipe, tmp_path / "m", serialization_format=fmt, input_example=X.head(3))
    theirs = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    _same(theirs.predict(X), flowml.pyfunc.load_model(tmp_path / "m").predict(X))
    _same(mlflow.sklearn.load_model(str(tmp_path / "m")).predict(X), pipe.predict(X))
    assert theirs.metadata.signature.inputs.input_names() == ["a", "b", "c"]


@pytest.mark.parametrize("kind", ["classifier", "booster"])
def test_flowml_xgboost_loads_in_mlflow(tmp_path: Path, binary: Any, kind: str) -> None:
    import xgboost as xgb

    X, y = binary
    if kind == "classifier":
        model: Any = xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    else:
        model = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, label=y), 5)
    flowml.xgboost.save_model(model, tmp_path / "m")
    _same(mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(X), flowml.pyfunc.load_model(tmp_path / "m").predict(X))
    assert type(mlflow.xgboost.load_model(str(tmp_path / "m"))) is type(model)


def test_flowml_custom_model_loads_in_mlflow(tmp_path: Path) -> None:
    X = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    sig = flowml.models.infer_signature(X, X, params={"k": 0})
    flowml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1), signature=sig, input_example=X)
    theirs = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    ours = flowml.pyfunc.load_model(tmp_path / "m")
    _same(theirs.predict(X), ours.predict(X))
    _same(theirs.predict(X, params={"k": 5}), ours.predict(X, params={"k": 5}))
    _same(theirs.predict(X, params={"k": 5}), X + 6)
    flowml.pyfunc.save_model(tmp_path / "n", python_model=NoContext())
    _same(mlflow.pyfunc.load_model(str(tmp_path / "n")).predict(X), X * 2)


def test_flowml_logged_model_dir_loads_in_mlflow(models_env: str, binary: Any) -> None:
    X, y = binary
    model = LogisticRegression().fit(X, y)
    with flowml.start_run() as run:
        flowml.sklearn.log_model(model, name="model", input_example=X.head(2))
    local = flowml.FlowmlClient().download_artifacts(run.info.run_id, "model")
    theirs = mlflow.pyfunc.load_model(local)
    _same(theirs.predict(X), model.predict(X))
    assert theirs.metadata.run_id == run.info.run_id


# -- MLflow → flowml -----------------------------------------------------------------------------
def test_mlflow_sklearn_skops_default_loads_in_flowml(tmp_path: Path, binary: Any) -> None:
    X, y = binary
    model = LogisticRegression().fit(X, y)
    mlflow.sklearn.save_model(model, str(tmp_path / "m"), input_example=X.head(3))
    assert (tmp_path / "m" / "model.skops").exists()  # MLflow 3.17's default format
    ours = flowml.pyfunc.load_model(tmp_path / "m")
    assert ours.integrity == "unverified"
    _same(ours.predict(X), mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(X))
    _same(flowml.sklearn.load_model(tmp_path / "m").predict(X), model.predict(X))
    _same(ours.smoke_test(), model.predict(X.head(3)))


def test_mlflow_sklearn_cloudpickle_loads_in_flowml(tmp_path: Path, binary: Any) -> None:
    X, y = binary
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    mlflow.sklearn.save_model(model, str(tmp_path / "m"), serialization_format="cloudpickle")
    _same(flowml.pyfunc.load_model(tmp_path / "m").predict(X), mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(X))


@pytest.mark.parametrize("kind", ["regressor", "booster"])
def test_mlflow_xgboost_loads_in_flowml(tmp_path: Path, binary: Any, kind: str) -> None:
    import xgboost as xgb

    X, y = binary
    if kind == "regressor":
        model: Any = xgb.XGBRegressor(n_estimators=5).fit(X, y)
    else:
        model = xgb.train({}, xgb.DMatrix(X, label=y), 5)
    mlflow.xgboost.save_model(model, str(tmp_path / "m"), input_example=X.head(2))
    ours = flowml.pyfunc.load_model(tmp_path / "m")
    _same(ours.predict(X), mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(X))
    assert type(flowml.xgboost.load_model(tmp_path / "m")) is type(model)


def test_mlflow_custom_python_model_loads_in_flowml(tmp_path: Path) -> None:
    from tests.models.mlflow_classes import MlflowAddN

    X = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    mlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=MlflowAddN(3.0), input_example=X)
    ours = flowml.pyfunc.load_model(tmp_path / "m")
    _same(ours.predict(X), mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(X))
    _same(ours.predict(X), X + 3.0)
    assert ours.metadata.mlflow_version == mlflow.__version__
    with pytest.raises(flowml.exceptions.FlowmlError, match="missing inputs"):
        ours.predict(X[["a"]])  # MLflow's signature is enforced by flowml
