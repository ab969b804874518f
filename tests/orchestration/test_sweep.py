"""flowml.sweep: search spaces (pure), a thread-runner sweep, and an xgboost sweep on Dask via the REST
server."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from flowml.client import FlowmlClient
from flowml.exceptions import InvalidParameterValue
from flowml.orchestration import flow, loguniform, randint, sweep, uniform
from flowml.orchestration.sweep import _candidates


# -- search spaces (no Prefect) ------------------------------------------------------------------------
def test_grid_and_random_candidates() -> None:
    grid = _candidates({"a": [1, 2], "b": ["x", "y", "z"]}, None, "grid", None)
    assert len(grid) == 6 and grid[0] == {"a": 1, "b": "x"} and grid[-1] == {"a": 2, "b": "z"}
    assert _candidates({"a": [1, 2], "b": [3]}, 1, "grid", None) == [{"a": 1, "b": 3}]
    space = {
        "lr": loguniform(1e-3, 1.0),
        "depth": randint(2, 4),
        "sub": uniform(0.5, 1.0),
        "kind": ["a", "b"],
    }
    first = _candidates(space, 20, "random", seed=3)
    assert first == _candidates(space, 20, "random", seed=3)  # seeded: reproducible
    assert all(1e-3 <= c["lr"] <= 1.0 and c["depth"] in (2, 3, 4) and 0.5 <= c["sub"] <= 1.0 for c in first)
    assert {c["kind"] for c in first} == {"a", "b"}


@pytest.mark.parametrize(
    ("space", "n_trials", "search", "message"),
    [
        ({}, None, "grid", "empty"),
        ({"a": []}, None, "grid", "non-empty list"),
        ({"a": "abc"}, None, "grid", "non-empty list"),
        ({"a": uniform(0, 1)}, None, "grid", "grid search needs lists"),
        ({"a": [1]}, None, "random", "needs n_trials"),
        ({"a": [1]}, 0, "random", "n_trials must be >= 1"),
        ({"a": [1]}, 2, "bayes", "search must be"),
    ],
)
def test_bad_spaces_are_rejected(
    space: dict[str, Any], n_trials: int | None, search: str, message: str
) -> None:
    with pytest.raises(InvalidParameterValue, match=message):
        _candidates(space, n_trials, search, None)
    with pytest.raises(InvalidParameterValue, match="low must be < high"):
        uniform(1, 1)


# -- a sweep on the thread runner ----------------------------------------------------------------------
def quadratic(x: float, y: int, offset: float = 0.0) -> dict[str, float]:
    if y == 99:
        raise ValueError("this trial fails")
    return {"loss": (x - 1.0) ** 2 + y + offset, "aux": x}


@pytest.mark.usefixtures("pipeline_env")
def test_thread_sweep_logs_children_and_best_on_parent() -> None:
    result = sweep(
        quadratic,
        {"x": [0.0, 1.0, 2.0], "y": [0, 99]},
        metric="loss",
        mode="min",
        fixed_params={"offset": 0.5},
        experiment="sweep-threads",
    )
    assert len(result.trials) == 6
    assert result.best_params == {"x": 1.0, "y": 0} and result.best_value == 0.5
    failed = [t for t in result.trials if t.error]
    assert len(failed) == 3 and all(t.status == "FAILED" for t in failed)
    client = FlowmlClient()
    parent = client.get_run(result.run_id)
    assert parent.data.params["x"] == "1.0" and parent.data.params["y"] == "0"
    assert parent.data.params["sweep.metric"] == "loss" and parent.data.params["sweep.n_trials"] == "6"
    assert parent.data.metrics["loss"] == 0.5 and parent.data.metrics["n_trials_failed"] == 3
    assert parent.data.tags["flowml.sweep.best_run_id"] == result.best_run_id
    assert parent.info.status == "FINISHED"
    table = result.table()
    assert list(table["trial"]) == list(range(6))
    assert {"params.x", "params.y", "params.offset", "metrics.loss", "metrics.aux"} <= set(table.columns)
    assert table["params.x"].dtype.kind == "f"  # numeric: parallel-coordinates ready
    assert sorted(table["status"]) == ["FAILED"] * 3 + ["FINISHED"] * 3
    best_row = table.loc[table["run_id"] == result.best_run_id].iloc[0]
    assert best_row["metrics.loss"] == 0.5 and best_row["params.x"] == 1.0


@pytest.mark.usefixtures("pipeline_env")
def test_sweep_inside_a_flow_is_a_nested_subflow_and_reports_bad_metrics() -> None:
    @flow(experiment="sweep-nested")
    def outer() -> tuple[str, str]:
        import flowml

        result = sweep(lambda a: {"score": a}, {"a": [1, 3, 2]}, metric="score", mode="max")
        active = flowml.active_run()
        assert active is not None
        return active.run_id, result.run_id

    outer_id, sweep_id = outer()
    sweep_run = FlowmlClient().get_run(sweep_id)
    assert sweep_run.data.tags["mlflow.parentRunId"] == outer_id
    assert sweep_run.data.params["a"] == "3" and sweep_run.data.metrics["score"] == 3
    with pytest.raises(InvalidParameterValue, match="no trial reported metric 'loss'"):
        sweep(lambda a: {"other": a}, {"a": [1]}, metric="loss")
    with pytest.raises(InvalidParameterValue, match="both swept and fixed"):
        sweep(quadratic, {"x": [1]}, fixed_params={"x": 2})


# -- xgboost on a Dask LocalCluster, logging through a real flowml server process ---------------------------
def xgb_trial(max_depth: int, learning_rate: float, n_estimators: int = 30) -> dict[str, float]:
    import os

    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.model_selection import train_test_split

    import flowml

    x, y = load_breast_cancer(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0)
    model = xgb.XGBClassifier(
        max_depth=max_depth, learning_rate=learning_rate, n_estimators=n_estimators, n_jobs=1
    ).fit(x_tr, y_tr)
    proba = model.predict_proba(x_te)[:, 1]
    flowml.set_tags({"worker_env_uri": flowml.get_tracking_uri(), "worker_pid": os.getpid()})
    return {"logloss": float(log_loss(y_te, proba)), "accuracy": float(accuracy_score(y_te, proba > 0.5))}


@pytest.mark.slow
@pytest.mark.usefixtures("pipeline_env")
def test_xgboost_sweep_on_dask_through_the_rest_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect_dask import DaskTaskRunner

    from tests.fixtures.server import flowml_server_process
    from tests.orchestration.conftest import _reset

    store = f"sqlite:///{tmp_path / 'server.db'}"
    with flowml_server_process(store, str(tmp_path / "server-artifacts")) as url:
        monkeypatch.setenv("FLOWML_TRACKING_URI", url)
        _reset()
        # The workers' own environment points elsewhere: their runs reach the server only through the context.
        decoy = f"sqlite:///{tmp_path / 'worker-env-decoy.db'}"
        cluster = {"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
        started = time.monotonic()
        result = sweep(
            xgb_trial,
            {"max_depth": [2, 4], "learning_rate": [0.05, 0.3]},
            metric="logloss",
            experiment="xgb-dask",
            task_runner=DaskTaskRunner(cluster_kwargs={**cluster, "env": {"FLOWML_TRACKING_URI": decoy}}),
        )
        elapsed = time.monotonic() - started
        client = FlowmlClient(url)
        exp = client.get_experiment_by_name("xgb-dask")
        assert exp is not None
        runs = client.search_runs([exp.experiment_id], "", max_results=100)
        trials = [r for r in runs if "flowml.sweep.trial" in r.data.tags]
        assert sorted(int(r.data.tags["flowml.sweep.trial"]) for r in trials) == [
            0,
            1,
            2,
            3,
        ]  # each exactly once
        assert all(r.info.status == "FINISHED" and r.data.tags["worker_env_uri"] == decoy for r in trials)
        assert str(os.getpid()) not in {r.data.tags["worker_pid"] for r in trials}
        assert {r.data.tags["mlflow.parentRunId"] for r in trials} == {result.run_id}
        best = min(trials, key=lambda r: r.data.metrics["logloss"])
        parent = client.get_run(result.run_id)
        assert best.info.run_id == result.best_run_id == parent.data.tags["flowml.sweep.best_run_id"]
        assert parent.data.params["max_depth"] == best.data.params["max_depth"]
        assert parent.data.params["learning_rate"] == best.data.params["learning_rate"]
        assert parent.data.metrics["logloss"] == pytest.approx(best.data.metrics["logloss"])
        assert elapsed < 90
