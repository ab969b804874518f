"""flowml's REST client against a real ``mlflow server`` (3.17) for the tracking calls."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowml.client import FlowmlClient
from flowml.entities import Metric, Param, RunTag
from flowml.exceptions import FlowmlError
from tests.fixtures.ports import free_port
from tests.fixtures.server import wait_healthy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow_bin = shutil.which("mlflow", path=os.path.dirname(sys.executable))
    assert mlflow_bin, "the mlflow package is a dev dependency"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWML_", "MLFLOW_"))}
    proc = subprocess.Popen(
        [
            mlflow_bin,
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, timeout=120, proc=proc)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_tracking_round_trip(mlflow_server: str, tmp_path: Path) -> None:
    client = FlowmlClient(mlflow_server)
    exp_id = client.create_experiment("from-flowml", tags={"owner": "flowml"})
    assert client.get_experiment_by_name("from-flowml").experiment_id == exp_id
    assert client.get_experiment_by_name("nope") is None
    run = client.create_run(exp_id, run_name="remote", tags={"team": "a"})
    run_id = run.info.run_id
    client.log_param(run_id, "lr", 0.1)
    client.log_batch(
        run_id,
        metrics=[Metric("loss", 1 / (s + 1), 1000 + s, s) for s in range(10)],
        params=[Param("depth", "3")],
        tags=[RunTag("stage", "dev")],
    )
    client.log_metric(run_id, "nan", float("nan"))
    client.set_terminated(run_id)
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "remote"
    assert got.data.params == {"lr": "0.1", "depth": "3"}
    assert got.data.metrics["loss"] == 0.1 and got.data.metrics["nan"] != got.data.metrics["nan"]
    assert got.data.tags["team"] == "a" and got.data.tags["stage"] == "dev"
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == list(range(10))
    found = client.search_runs(
        [exp_id], "metrics.loss < 0.5 and params.depth = '3'", order_by=["metrics.loss"]
    )
    assert [r.info.run_id for r in found] == [run_id]
    with pytest.raises(FlowmlError) as err:
        client.log_param(run_id, "lr", 0.2)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(FlowmlError) as err:
        client.get_run("0" * 32)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
