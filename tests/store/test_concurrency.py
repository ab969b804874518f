"""Many writer processes on one store, and a writer killed with SIGKILL mid-logging."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flowml.client import FlowmlClient

_WRITER = textwrap.dedent(
    """
    import sys
    import flowml
    from flowml.entities import Metric
    client = flowml.FlowmlClient()
    run_id, worker, n_batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for b in range(n_batches):
        client.log_batch(run_id, metrics=[Metric(f"w{worker}", float(i), 1, b * 100 + i) for i in range(100)])
        client.log_param(run_id, f"w{worker}_b{b}", b)
        client.set_tag(run_id, f"last{worker}", b)
    own = client.create_run("0", run_name=f"worker-{worker}")
    with flowml.start_run(run_id=own.info.run_id):
        for i in range(500):
            flowml.log_metric("fluent", float(i), step=i)
    """
)


def _env(store_uri: str, artifact_root: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWML_", "MLFLOW_"))}
    env.update(FLOWML_TRACKING_URI=store_uri, FLOWML_ARTIFACT_ROOT=artifact_root)
    return env


@pytest.mark.slow
def test_eight_processes_logging_at_once_lose_nothing(flowml_env: str, artifact_root: str) -> None:
    client = FlowmlClient()
    run_id = client.create_run("0").info.run_id
    n_workers, n_batches = 8, 20
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, run_id, str(w), str(n_batches)],
            env=_env(flowml_env, artifact_root),
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(n_workers)
    ]
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * n_workers, errors
    assert not any("locked" in e for e in errors)
    run = client.get_run(run_id)
    assert len(run.data.params) == n_workers * n_batches
    for w in range(n_workers):
        assert len(client.get_metric_history(run_id, f"w{w}")) == n_batches * 100
        assert run.data.tags[f"last{w}"] == str(n_batches - 1)
        assert run.data.metrics[f"w{w}"] == 99.0
    fluent_runs = client.search_runs(["0"], "metrics.fluent = 499")
    assert len(fluent_runs) == n_workers
    for r in fluent_runs:
        assert len(client.get_metric_history(r.info.run_id, "fluent")) == 500
        assert r.info.status == "FINISHED"


_KILLED = textwrap.dedent(
    """
    import sys, flowml
    ack = open(sys.argv[1], "a", buffering=1)
    with flowml.start_run() as run:
        ack.write(f"run {run.info.run_id}\\n")
        step = 0
        while True:
            for _ in range(250):
                flowml.log_metric("m", float(step), step=step)
                step += 1
            flowml.flush()
            ack.write(f"flushed {step}\\n")
    """
)


@pytest.mark.slow
def test_sigkill_mid_logging_keeps_a_consistent_db_with_every_flushed_point(
    flowml_env: str, artifact_root: str, tmp_path: Path
) -> None:
    ack = tmp_path / "ack.txt"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, str(ack)], env=_env(flowml_env, artifact_root))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = ack.read_text().splitlines() if ack.exists() else []
        if sum(line.startswith("flushed") for line in lines) >= 5:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    lines = ack.read_text().splitlines()
    run_id = lines[0].split()[1]
    acknowledged = max(int(line.split()[1]) for line in lines if line.startswith("flushed"))
    if flowml_env.startswith("sqlite"):
        path = flowml_env.removeprefix("sqlite:///")
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()
    client = FlowmlClient()
    history = client.get_metric_history(run_id, "m")
    steps = sorted(m.step for m in history)
    assert len(steps) >= acknowledged
    assert steps[:acknowledged] == list(range(acknowledged))
    assert client.get_run(run_id).info.status == "RUNNING"  # nobody could end it
