"""End to end with real processes: `mlflow run` against a flowml server, in-code `mlflow` logging,
and a deployment served with a schedule / run by a process worker on a real `prefect server`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from flowml.client import FlowmlClient
from flowml.entities import Run
from flowml.projects._execute import FLOW_RUN_ID_TAG
from tests.fixtures.prefect_server import prefect_env
from tests.fixtures.processes import background_process
from tests.fixtures.server import serve_in_thread
from tests.projects.conftest import REPO, WINE, MakeProject

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("tracking")]

BIN = str(Path(sys.executable).parent)


@pytest.fixture
def flowml_url(tracking: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A flowml server over the test's store; FLOWML_TRACKING_URI points at it."""
    dest = tmp_path / "server-artifacts"
    dest.mkdir()
    with serve_in_thread(tracking, str(dest)) as url:
        monkeypatch.setenv("FLOWML_TRACKING_URI", url)
        from flowml.settings import get_settings

        get_settings.cache_clear()
        yield url


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWML_", "MLFLOW_", "PREFECT_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def _wait_for_run(
    client: FlowmlClient, predicate: object, timeout: float, proc: subprocess.Popen[bytes]
) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"process exited with {proc.returncode}"
        for run in client.search_runs(["0"], "attributes.status = 'FINISHED'"):
            if callable(predicate) and predicate(run):
                return run
        time.sleep(0.5)
    raise TimeoutError("no finished tracking run")


def _prefect_process_env(tmp_path: Path, api_url: str, tracking: str) -> dict[str, str]:
    """A serve/worker/CLI process: the test's Prefect server and tracking store, nothing else inherited."""
    env = {
        k: v
        for k, v in prefect_env(tmp_path / "prefect-home", api_url).items()
        if not k.startswith(("FLOWML_", "MLFLOW_"))
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, "FLOWML_TRACKING_URI": tracking, "FLOWML_ARTIFACT_ROOT": str(tmp_path / "artifacts")}


def test_example_runs_under_real_mlflow_run(flowml_url: str, tmp_path: Path) -> None:
    env = _clean_env(MLFLOW_TRACKING_URI=flowml_url)
    done = subprocess.run(
        [
            str(Path(BIN) / "mlflow"),
            "run",
            str(WINE),
            "--env-manager",
            "local",
            "-P",
            "C=0.3",
            "--experiment-name",
            "portable",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client = FlowmlClient(flowml_url)
    experiment = client.get_experiment_by_name("portable")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["C"] == "0.3" and run.data.metrics["accuracy"] > 0.8
    assert run.data.tags["mlflow.source.type"] == "PROJECT"
    assert run.data.tags["mlflow.project.entryPoint"] == "main"


@pytest.mark.usefixtures("prefect_api")
def test_in_code_mlflow_logging_lands_in_the_project_run(flowml_url: str, make_project: MakeProject) -> None:
    import flowml.projects as projects

    root = make_project(
        "name: m\nentry_points: {main: {parameters: {x: float}, command: 'python log.py {x}'}}\n",
        log__py="import sys, mlflow\nwith mlflow.start_run():\n    mlflow.log_metric('x2', 2 * float(sys.argv[1]))\n",  # noqa: E501
    )
    submitted = projects.run(str(root), parameters={"x": 1.5})
    run = FlowmlClient(flowml_url).get_run(submitted.run_id or "")
    assert run.data.metrics == {"x2": 3.0} and run.data.params == {"x": "1.5"}
    assert run.info.status == "FINISHED"


def _flow_run(api_url: str, flow_run_id: str) -> object:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(flow_run_id))


def test_deploy_serves_a_schedule_that_produces_tracking_runs(
    prefect_server: str, tracking: str, tmp_path: Path
) -> None:
    env = _prefect_process_env(tmp_path, prefect_server, tracking)
    argv = [
        sys.executable,
        "-m",
        "flowml.cli_projects",
        "deploy",
        str(WINE),
        "--name",
        "every-10s",
        "--interval",
        "10",
        "-P",
        "C=0.7",
    ]
    client = FlowmlClient(tracking)
    with background_process(argv, env, tmp_path / "serve.log", tmp_path) as proc:
        # generous: the scheduler loop, a flow-run process start and training share 2 cores with the suite
        run = _wait_for_run(client, lambda r: FLOW_RUN_ID_TAG in r.data.tags, 180, proc)
        deadline = time.monotonic() + 30  # the flow run ends just after its tracking run
        while True:
            flow_run = _flow_run(prefect_server, run.data.tags[FLOW_RUN_ID_TAG])
            if flow_run.state_type.value != "RUNNING" or time.monotonic() > deadline:  # type: ignore[attr-defined]
                break
            time.sleep(0.3)
    assert run.data.params["C"] == "0.7" and run.data.metrics["accuracy"] > 0.8
    assert flow_run.auto_scheduled  # type: ignore[attr-defined]  # made by the server's scheduler
    assert str(flow_run.state_type.value) == "COMPLETED"  # type: ignore[attr-defined]


def test_prefect_yaml_and_work_pool_deployments_run_on_a_process_worker(
    prefect_server: str, tracking: str, tmp_path: Path
) -> None:
    env = _prefect_process_env(tmp_path, prefect_server, tracking)
    prefect = [sys.executable, "-m", "prefect"]

    def cli(*args: str) -> str:
        done = subprocess.run(
            [*args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    cli(*prefect, "work-pool", "create", "local-process", "--type", "process", "--overwrite")
    cli(*prefect, "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml")
    out = cli(
        sys.executable,
        "-m",
        "flowml.cli_projects",
        "deploy",
        str(WINE),
        "--name",
        "pool-run",
        "--work-pool",
        "local-process",
        "-P",
        "C=0.2",
        "--cron",
        "0 4 * * *",
    )
    assert "registered" in out

    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    client = FlowmlClient(tracking)
    worker = [*prefect, "worker", "start", "--pool", "local-process"]
    with (
        background_process(worker, env, tmp_path / "worker.log", REPO),
        temporary_settings(updates={PREFECT_API_URL: prefect_server}),
    ):
        yaml_run: Any = run_deployment("wine_quality-main/wine-quality-nightly", timeout=120)
        pool_run: Any = run_deployment("wine_quality-main/pool-run", timeout=120)
    assert yaml_run.state is not None and yaml_run.state.is_completed(), yaml_run.state
    assert pool_run.state is not None and pool_run.state.is_completed(), pool_run.state
    by_flow_run = {r.data.tags.get(FLOW_RUN_ID_TAG): r for r in client.search_runs(["0"])}
    assert by_flow_run[str(yaml_run.id)].data.params["C"] == "0.5"  # from prefect.yaml
    assert by_flow_run[str(pool_run.id)].data.params["C"] == "0.2"
    assert by_flow_run[str(pool_run.id)].data.metrics["accuracy"] > 0.8


def test_cancelling_a_project_flow_run_from_prefect_marks_its_run_killed(
    prefect_server: str, tracking: str, tmp_path: Path, make_project: MakeProject
) -> None:
    from flowml.projects import load_project
    from flowml.projects.compile import flow_name_for

    project = make_project(
        """
        name: sleeper
        entry_points:
          main:
            command: "python sleep.py"
        """,
        sleep__py="import time\nprint('started', flush=True)\ntime.sleep(300)\n",
    )
    flow_name = flow_name_for(load_project(str(project)), "main")
    env = _prefect_process_env(tmp_path, prefect_server, tracking)
    client = FlowmlClient(tracking)

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "prefect", *args], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    argv = [sys.executable, "-m", "flowml.cli_projects", "deploy", str(project), "--name", "cancel-me"]
    with background_process(argv, env, tmp_path / "serve.log", tmp_path) as proc:
        deadline = time.monotonic() + 120
        while True:  # the served deployment appears once `deploy` has registered it
            done = subprocess.run(
                [sys.executable, "-m", "prefect", "deployment", "inspect", f"{flow_name}/cancel-me"],
                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            if done.returncode == 0:
                break
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(1)
        cli("deployment", "run", f"{flow_name}/cancel-me")
        running: Run | None = None
        deadline = time.monotonic() + 120
        while running is None and time.monotonic() < deadline:
            found = client.search_runs(["0"], "attributes.status = 'RUNNING'")
            running = next((r for r in found if FLOW_RUN_ID_TAG in r.data.tags), None)
            time.sleep(0.5)
        assert running is not None, (tmp_path / "serve.log").read_text()[-3000:]
        cli("flow-run", "cancel", running.data.tags[FLOW_RUN_ID_TAG])
        deadline = time.monotonic() + 120
        status = running.info.status
        while status == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.5)
            status = client.get_run(running.info.run_id).info.status
        state = ""
        while state != "CANCELLED" and time.monotonic() < deadline:  # CANCELLING -> CANCELLED by the runner
            state = str(_flow_run(prefect_server, running.data.tags[FLOW_RUN_ID_TAG]).state_type.value)  # type: ignore[attr-defined]
            time.sleep(0.5)
    assert status == "KILLED", (tmp_path / "serve.log").read_text()[-3000:]
    assert state == "CANCELLED"
