"""The compose services' own command lines, run for real without Docker: the exact `command` and
`environment` that `docker compose config` resolves for flowml-server, prefect-setup, worker and dispatcher,
with only the service host names (postgres, minio, prefect-server, flowml-server) pointed at the test
session's private PostgreSQL cluster, moto S3 server and `prefect server`. Each compose health check
command is run against the process too. Everything started here is stopped by process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.ports import free_port
from tests.fixtures.postgres import SUPERUSER, PostgresCluster
from tests.fixtures.prefect_server import prefect_env
from tests.fixtures.server import wait_healthy
from tests.infra.helpers import TEST_ENV, compose_model, write_env_file

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

BIN = str(Path(sys.executable).parent)


@dataclass
class Stack:
    model: dict[str, Any]
    hosts: dict[str, str]  # compose address -> test address
    pool: str
    bucket: str
    db_uri: str
    root: Path
    server_url: str = ""

    def env(self, service: str, **extra: str) -> dict[str, str]:
        """The service's compose environment with the host names rewritten, on a clean base."""
        env = prefect_env(self.root / f"{service}-prefect-home")
        env = {k: v for k, v in env.items() if not k.startswith(("FLOWML_", "MLFLOW_", "AWS_", "PG"))}
        env.pop("PREFECT_API_URL", None)
        env["PATH"] = os.pathsep.join([BIN, env.get("PATH", "")])
        for key, value in (self.model["services"][service].get("environment") or {}).items():
            for old, new in self.hosts.items():
                value = str(value).replace(old, new)
            env[key] = value
        env.update(extra)
        return env

    def script(self, service: str) -> str:
        argv = self.model["services"][service]["command"]
        assert argv[:2] == ["sh", "-c"], argv
        return str(argv[2]).replace("$$", "$")

    def healthcheck(self, service: str, *replace: tuple[str, str]) -> list[str]:
        test = list(self.model["services"][service]["healthcheck"]["test"])
        assert test[0] == "CMD"
        argv = test[1:]
        for old, new in replace:
            assert sum(old in a for a in argv) == 1, (old, argv)
            argv = [a.replace(old, new) for a in argv]
        return argv


@contextlib.contextmanager
def background(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as fh:
        proc = subprocess.Popen(argv, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        for sig, wait in ((signal.SIGINT, 15), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
                break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def run_ok(argv: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{argv}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_cluster: PostgresCluster,
    s3_endpoint_url: str,
    prefect_server: str,
) -> Iterator[Stack]:
    import boto3

    root = tmp_path_factory.mktemp("compose-live")
    tag = uuid.uuid4().hex[:8]
    db = postgres_cluster.unique_name("compose")
    db_uri = postgres_cluster.create_database(db)
    # One server worker: uvicorn's supervisor kills worker processes that take over 5 s to import (it
    # happens on a loaded CI machine); the compose default (2) is checked by test_commands.
    values = {**TEST_ENV, "POSTGRES_USER": SUPERUSER, "POSTGRES_DB": db, "FLOWML_SERVER_WORKERS": "1",
              "FLOWML_S3_BUCKET": f"infra-{tag}", "FLOWML_WORK_POOL": f"infra-{tag}"}  # fmt: skip
    model = compose_model(write_env_file(root / "test.env", values))
    s3 = boto3.client(
        "s3", endpoint_url=s3_endpoint_url, region_name="us-east-1",
        aws_access_key_id=TEST_ENV["FLOWML_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=TEST_ENV["FLOWML_S3_SECRET_ACCESS_KEY"],
    )  # fmt: skip
    s3.create_bucket(Bucket=values["FLOWML_S3_BUCKET"])
    hosts = {
        "@postgres:5432/": f"@{postgres_cluster.host}:{postgres_cluster.port}/",
        "http://minio:9000": s3_endpoint_url,
        "http://prefect-server:4200/api": prefect_server,
    }
    yield Stack(model, hosts, values["FLOWML_WORK_POOL"], values["FLOWML_S3_BUCKET"], db_uri, root)
    with contextlib.suppress(Exception):
        postgres_cluster.drop_database(db)


@pytest.fixture(scope="module")
def server(stack: Stack) -> Iterator[str]:
    """flowml-server's compose command (migrate, then serve), on loopback instead of 0.0.0.0."""
    port = free_port()
    script = stack.script("flowml-server")
    assert "--host 0.0.0.0 --port 5000" in script
    script = script.replace("--host 0.0.0.0 --port 5000", f"--host 127.0.0.1 --port {port}")
    url = f"http://127.0.0.1:{port}"
    with background(["sh", "-c", script], stack.env("flowml-server"), stack.root / "server.log") as proc:
        try:
            wait_healthy(url, timeout=90, proc=proc)
        except (RuntimeError, TimeoutError):
            pytest.fail((stack.root / "server.log").read_text()[-3000:])
        stack.hosts["http://flowml-server:5000"] = url
        stack.server_url = url
        yield url


def test_server_migrates_postgres_and_stores_artifacts_in_s3(
    stack: Stack, server: str, s3_endpoint_url: str, tmp_path: Path
) -> None:
    import boto3

    from flowml.client import FlowmlClient
    from flowml.store.db import HEAD_REVISION

    port = server.rsplit(":", 1)[1]
    run_ok(stack.healthcheck("flowml-server", (":5000/", f":{port}/")), stack.env("flowml-server"), 30)
    current = run_ok([f"{BIN}/flowml", "db", "current", stack.db_uri], stack.env("flowml-server"))
    assert current.stdout.strip() == HEAD_REVISION
    client = FlowmlClient(server)
    default = client.get_experiment("0")
    assert default.artifact_location.startswith("mlflow-artifacts:")  # `db upgrade` used FLOWML_ARTIFACT_ROOT
    run = client.create_run("0")
    (tmp_path / "notes.txt").write_text("through the proxy into S3")
    client.log_artifact(run.info.run_id, str(tmp_path / "notes.txt"))
    s3 = boto3.client("s3", endpoint_url=s3_endpoint_url, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="y")  # fmt: skip
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=stack.bucket).get("Contents", [])]
    assert [
        k for k in keys if k.startswith("artifacts/") and k.endswith(f"{run.info.run_id}/artifacts/notes.txt")
    ]


def _final_state(flow_run_id: Any, timeout: float) -> Any:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            run = client.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_final():
                return run
            time.sleep(1)
    raise TimeoutError(f"flow run {flow_run_id} not finished after {timeout}s")


def test_setup_and_worker_run_flowmls_deployment_flow(stack: Stack, server: str, prefect_api: str) -> None:
    from prefect.automations import Automation
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from flowml.client import FlowmlClient
    from flowml.deploy.flows import DEPLOYMENT_NAME, FLOW_NAME
    from flowml.deploy.records import records
    from flowml.deploy.setup import automation_name

    setup_env = stack.env("prefect-setup")
    for _ in range(2):  # idempotent: the second run finds the pool and replaces the automations
        run_ok(["sh", "-c", stack.script("prefect-setup")], setup_env, timeout=180)
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"{FLOW_NAME}/{DEPLOYMENT_NAME}")
        assert deployment.work_pool_name == stack.pool
        assert client.read_work_pool(stack.pool).type == "process"
    names = [automation_name("stage", "Production"), automation_name("alias", "champion")]
    try:
        assert all(Automation.read(name=n) for n in names)
        health_port = free_port()
        env = stack.env("worker", PREFECT_WORKER_WEBSERVER_PORT=str(health_port))
        with background(["sh", "-c", stack.script("worker")], env, stack.root / "worker.log") as worker:
            check = stack.healthcheck("worker", (":8080/", f":{health_port}/"))
            deadline = time.monotonic() + 90
            while subprocess.run(check, env=env, capture_output=True, check=False).returncode != 0:
                assert worker.poll() is None, (stack.root / "worker.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "worker health check never passed"
                time.sleep(1)
            flow_run = run_deployment(
                f"{FLOW_NAME}/{DEPLOYMENT_NAME}",
                parameters={"name": "no-such-model", "version": "1"},
                timeout=0,
            )
            done = _final_state(flow_run.id, timeout=180)
        log = (stack.root / "worker.log").read_text()
        # flowml's flow ran in a process of this pool's worker and reported through the REST server
        assert done.work_pool_name == stack.pool
        assert done.state.is_failed(), (done.state, log[-3000:])
        found = records(FlowmlClient(server)).list(name="no-such-model")
        assert [(r.status, r.flow_run_id) for r in found] == [("FAILED", str(flow_run.id))]
    finally:
        for name in names:
            with contextlib.suppress(ValueError):
                Automation.read(name=name).delete()
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment.id)
            client.delete_work_pool(stack.pool)


def test_dispatcher_beats_and_stops_on_sigterm(stack: Stack, server: str, prefect_server: str) -> None:
    argv = list(stack.model["services"]["dispatcher"]["command"])
    beat = stack.root / "dispatch.heartbeat"
    assert argv.count("/tmp/flowml-dispatch.heartbeat") == 1
    argv = [a.replace("/tmp/flowml-dispatch.heartbeat", str(beat)) for a in argv]
    argv[0] = f"{BIN}/{argv[0]}"
    env = stack.env("dispatcher")
    assert env["FLOWML_TRACKING_URI"] == server and env["PREFECT_API_URL"] == prefect_server
    check = stack.healthcheck("dispatcher", ("/tmp/flowml-dispatch.heartbeat", str(beat)))
    assert subprocess.run(check, env=env, capture_output=True, check=False).returncode != 0  # no beat yet
    with background(argv, env, stack.root / "dispatcher.log") as proc:
        deadline = time.monotonic() + 60
        while not beat.exists():
            assert proc.poll() is None, (stack.root / "dispatcher.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.2)
        run_ok(check, env, timeout=30)
        first = beat.stat().st_mtime
        time.sleep(1.5)
        assert beat.stat().st_mtime > first, "the heartbeat is touched on every pass"
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert "dispatching registry events to prefect" in (stack.root / "dispatcher.log").read_text()
    httpx.get(f"{server}/health").raise_for_status()
