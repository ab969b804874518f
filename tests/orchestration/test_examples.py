"""The example pipelines run as scripts (``python flows/<file>.py``) and load as deployment entrypoints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flowml.client import FlowmlClient

REPO = Path(__file__).resolve().parents[2]


def run_script(name: str, tmp_path: Path, prefect_server: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWML_", "MLFLOW_"))}
    env.update(
        PREFECT_API_URL=prefect_server,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    return subprocess.run(
        [sys.executable, str(REPO / "flows" / name)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def registered(tmp_path: Path) -> FlowmlClient:
    return FlowmlClient(f"sqlite:///{tmp_path / 'flowml.db'}")


@pytest.mark.usefixtures("tracking")
def test_train_sklearn_script_on_embedded_defaults(tmp_path: Path, prefect_server: str) -> None:
    done = run_script("train_sklearn.py", tmp_path, prefect_server)
    assert done.returncode == 0, done.stderr[-3000:]
    client = registered(tmp_path)
    (version,) = client.search_model_versions("name = 'wine-classifier'")
    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["accuracy"] > 0.8
    assert run.data.params["C"] == "1.0" and "flowml.prefect.flow_run_id" in run.data.tags
    (train_run,) = client.search_runs(
        [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'"
    )
    assert (
        train_run.data.params == {"C": "1.0", "max_iter": "500"}
        and "train_accuracy" in train_run.data.metrics
    )
    assert (tmp_path / "flowml-artifacts").is_dir()


@pytest.mark.slow
@pytest.mark.usefixtures("tracking")
def test_xgboost_sweep_script_registers_the_best_trial(tmp_path: Path, prefect_server: str) -> None:
    done = run_script("xgboost_sweep.py", tmp_path, prefect_server)
    assert done.returncode == 0, done.stderr[-3000:]
    client = registered(tmp_path)
    (version,) = client.search_model_versions("name = 'breast-cancer-xgb'")
    flow_run = client.get_run(version.run_id)
    sweep_run = client.get_run(version.tags["sweep_run_id"])
    assert sweep_run.data.tags["mlflow.parentRunId"] == flow_run.info.run_id
    trials = client.search_runs(
        [flow_run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{sweep_run.info.run_id}'"
    )
    assert len(trials) == 8
    best = min(trials, key=lambda r: r.data.metrics["logloss"])
    assert sweep_run.data.tags["flowml.sweep.best_run_id"] == best.info.run_id
    assert flow_run.data.params["best.max_depth"] == best.data.params["max_depth"]


def test_deployment_entrypoints_load_as_flows(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect import Flow
    from prefect.flows import load_flow_from_entrypoint

    monkeypatch.chdir(REPO)
    spec = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    mine = {d["name"]: d for d in spec["deployments"] if d["entrypoint"].startswith("flows/")}
    assert set(mine) == {"train-sklearn-daily", "xgboost-sweep-weekly"}
    for deployment in mine.values():
        loaded = load_flow_from_entrypoint(deployment["entrypoint"])
        assert isinstance(loaded, Flow)
        assert set(deployment["parameters"]) <= set(loaded.parameters.properties)
        assert deployment["work_pool"]["name"] == "local-process"
        assert all(s["cron"] for s in deployment["schedules"])
