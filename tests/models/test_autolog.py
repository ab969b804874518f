"""Autolog into real runs: params, MLflow-named training metrics, models, Pipeline, GridSearchCV, xgboost."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import flowml
import flowml.pyfunc
import flowml.sklearn
import flowml.xgboost
from flowml.models.autolog import autolog, is_enabled


def _client() -> flowml.FlowmlClient:
    return flowml.FlowmlClient()


def _runs() -> list[Any]:
    return list(flowml.search_runs(output_format="list"))


def test_sklearn_classifier_new_run(models_env: str, binary: Any) -> None:
    x_data, y = binary
    flowml.sklearn.autolog()
    model = LogisticRegression(C=0.5).fit(x_data, y)
    assert flowml.active_run() is None  # the autolog run was ended
    (run,) = _runs()
    assert run.info.status == "FINISHED"
    data = run.data
    assert data.params["C"] == "0.5" and data.tags["estimator_class"].endswith("LogisticRegression")
    for key in (
        "training_score",
        "training_accuracy_score",
        "training_precision_score",
        "training_recall_score",
        "training_f1_score",
        "training_log_loss",
        "training_roc_auc",
    ):
        assert key in data.metrics, key
    assert data.metrics["training_score"] == pytest.approx(model.score(x_data, y))
    loaded = flowml.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.metadata.signature is not None and loaded.metadata.saved_input_example_info is not None
    np.testing.assert_array_equal(loaded.predict(x_data), model.predict(x_data))
    np.testing.assert_array_equal(loaded.smoke_test(), model.predict(x_data.head(5)))


def test_sklearn_regressor_in_active_run(models_env: str, binary: Any) -> None:
    x_data, y = binary
    flowml.sklearn.autolog(log_models=False)
    with flowml.start_run() as run:
        LinearRegression().fit(x_data, y.astype(float))
    data = _client().get_run(run.info.run_id).data
    for key in (
        "training_mean_squared_error",
        "training_root_mean_squared_error",
        "training_mean_absolute_error",
        "training_r2_score",
        "training_score",
    ):
        assert key in data.metrics, key
    assert len(_runs()) == 1
    assert not _client().list_artifacts(run.info.run_id)
    assert not flowml.search_logged_models(output_format="list")  # log_models=False: no logged model


def test_pipeline_logs_once(models_env: str, binary: Any) -> None:
    x_data, y = binary
    flowml.sklearn.autolog()
    make_pipeline(StandardScaler(), LogisticRegression()).fit(x_data, y)
    (run,) = _runs()
    assert run.data.params["logisticregression__C"] == "1.0"
    assert "training_accuracy_score" in run.data.metrics
    assert isinstance(flowml.sklearn.load_model(f"runs:/{run.info.run_id}/model"), Pipeline)


def test_grid_search_child_runs(models_env: str, binary: Any) -> None:
    x_data, y = binary
    flowml.sklearn.autolog(max_tuning_runs=None)
    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0, 10.0]}, cv=3).fit(x_data, y)
    runs = _runs()
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(c.data.params["C"] for c in children) == ["0.1", "1.0", "10.0"]
    assert all("mean_test_score" in c.data.metrics and "rank_test_score" in c.data.metrics for c in children)
    assert parent.data.params["best_C"] == str(search.best_params_["C"])
    assert parent.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    logged = flowml.search_logged_models([parent.info.experiment_id], output_format="list")
    assert {m.name for m in logged if m.source_run_id == parent.info.run_id} == {"model", "best_estimator"}


def test_disable_restores_original_methods(models_env: str, binary: Any) -> None:
    x_data, y = binary
    original = LogisticRegression.__dict__["fit"]
    autolog()
    assert is_enabled("sklearn") and is_enabled("xgboost")
    assert LogisticRegression.__dict__["fit"] is not original
    flowml.sklearn.autolog(disable=True)
    flowml.xgboost.autolog(disable=True)
    assert LogisticRegression.__dict__["fit"] is original
    import xgboost as xgb

    assert not getattr(xgb.train, "_flowml_autolog", False)
    LogisticRegression().fit(x_data, y)
    assert _runs() == []


def test_xgboost_train_per_iteration_metrics(models_env: str, binary: Any) -> None:
    import xgboost as xgb

    x_data, y = binary
    flowml.xgboost.autolog()
    dtrain = xgb.DMatrix(x_data, label=y)
    booster = xgb.train(
        {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 2},
        dtrain,
        num_boost_round=7,
        evals=[(dtrain, "train")],
    )
    (run,) = _runs()
    assert run.data.params["max_depth"] == "2" and run.data.params["num_boost_round"] == "7"
    history = _client().get_metric_history(run.info.run_id, "train-logloss")
    assert [m.step for m in history] == list(range(7))
    assert history[-1].value < history[0].value
    loaded = flowml.xgboost.load_model(f"runs:/{run.info.run_id}/model")
    np.testing.assert_allclose(loaded.predict(dtrain), booster.predict(dtrain))


def test_xgboost_sklearn_api(models_env: str, binary: Any) -> None:
    import xgboost as xgb

    x_data, y = binary
    autolog()  # flowml.autolog(): every installed integration
    model = xgb.XGBClassifier(n_estimators=4, max_depth=2).fit(
        x_data, y, eval_set=[(x_data, y)], verbose=False
    )
    (run,) = _runs()  # one run: the inner xgboost.train did not start another
    assert run.data.params["max_depth"] == "2" and run.data.params["n_estimators"] == "4"
    history = _client().get_metric_history(run.info.run_id, "validation_0-logloss")
    assert [m.step for m in history] == [0, 1, 2, 3]
    loaded = flowml.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.metadata.signature is not None
    np.testing.assert_array_equal(loaded.predict(x_data), model.predict(x_data))


def test_failed_fit_marks_autolog_run_failed(models_env: str) -> None:
    flowml.sklearn.autolog()
    with pytest.raises(ValueError, match="class"):
        LogisticRegression().fit([[1.0], [2.0]], [0, 0])  # one class only
    (run,) = _runs()
    assert run.info.status == "FAILED"


def test_public_api_exposes_autolog_and_flavor_modules() -> None:
    assert "autolog" in flowml.__all__
    from flowml.models import autolog as autolog_module

    assert flowml.autolog is autolog_module.autolog
    assert callable(flowml.pyfunc.load_model) and callable(flowml.sklearn.autolog)
    assert callable(flowml.xgboost.autolog)
