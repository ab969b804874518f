"""The team topology, for real, on loopback (issue #11): every part a separate process, clients over HTTP.

Parts: a private PostgreSQL cluster, an S3 server (moto's server mode), ``prefect server start`` (the
session's fixtures), and, started here: ``flowml server`` on Postgres + S3, a Prefect *process* worker on
its own work pool, and the registry event dispatcher (``flowml deploy dispatch``). The chain:

1. ``flowml project deploy`` registers an MLproject for the pool; a flow run created through the Prefect
   API runs on the worker;
2. its tracking run is FINISHED in Postgres (params, metrics) and the model's files are in the S3 bucket;
3. the model is registered and the ``champion`` alias set, through the flowml server;
4. the dispatcher turns the registry event into a Prefect event, the automation made by
   ``flowml deploy setup`` runs the deployment flow on the same worker, and the BentoML endpoint answers
   what local ``predict`` answers;
5. ``GET /api/flowml/deployments`` links version → event → flow run → bento → endpoint;

then everything started here is stopped by PID, and the test asserts nothing is left: not the server,
worker, dispatcher, ``bentoml serve`` or endpoint proxy (by PID / process group), nor any process that
inherited this test's marker environment variable, and the endpoint port is closed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa

from flowml.client import FlowmlClient
from tests.fixtures.ports import free_port
from tests.fixtures.prefect_server import prefect_env
from tests.fixtures.processes import (
    background_process,
    group_alive,
    log_tail,
    pid_alive,
    pids_with_env,
    stop_groups,
)
from tests.fixtures.s3 import DUMMY_ENV
from tests.fixtures.server import flowml_server_popen

# the waits below carry their own timeouts (and say what was awaited, with the logs); this only caps them
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.s3, pytest.mark.timeout(900)]

PROJECT = Path(__file__).parent / "wine_model"
MODEL = "topology-wine"
MARKER = "TOPOLOGY_TEST_MARKER"  # in the environment of everything this test starts
BIN = str(Path(sys.executable).parent)
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass
class Topology:
    root: Path
    prefect_url: str
    marker: str
    env: dict[str, str] = field(default_factory=dict)
    flowml_url: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    short_lived: list[subprocess.Popen[str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    _last: float = field(default_factory=time.monotonic)

    def mark(self, phase: str) -> None:
        """Record how long ``phase`` took (seconds since the previous mark), in ``timings.log`` of the
        test's directory and the log (``-o log_cli=true --log-cli-level=INFO``)."""
        now = time.monotonic()
        self.timings[phase] = round(now - self._last, 1)
        self._last = now
        logger.info("topology: %s took %.1f s", phase, self.timings[phase])
        with (self.root / "timings.log").open("a") as fh:
            fh.write(f"{self.timings[phase]:6.1f} s  {phase}\n")

    def log(self, name: str) -> Path:
        self.logs[name] = self.root / f"{name}.log"
        return self.logs[name]

    def diagnostics(self) -> str:
        return "\n".join(log_tail(path, 40) for path in self.logs.values())

    def fail(self, message: str) -> AssertionError:
        return AssertionError(f"{message}\n{self.diagnostics()}")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise self.fail(f"{name} exited with {proc.returncode}")

    def wait_for(self, what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.3) -> T:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            result = probe()
            if result:
                return result
            time.sleep(every)
        raise self.fail(f"timed out after {timeout:.0f}s waiting for {what}")

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start a short-lived ``flowml`` command (collect it with :meth:`finish`)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "flowml.cli", *args], env=env or self.env, cwd=self.root, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.short_lived.append(proc)
        return proc

    def kill_short_lived(self) -> None:
        for proc in self.short_lived:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def finish(self, proc: subprocess.Popen[str], timeout: float = 120) -> str:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise self.fail(f"{proc.args!r} exited with {proc.returncode}:\n{out[-2000:]}\n{err[-3000:]}")
        return out


def _client_env(root: Path, prefect_url: str, marker: str) -> dict[str, str]:
    """The worker's, dispatcher's and CLIs' environment, as infra/docker-compose.yml sets it: the Prefect
    API and (added once known) the tracking server. No database or S3 settings or credentials: artifacts
    go through the server's proxy. Nothing flowml/MLflow/AWS/BentoML-related comes from the test process."""
    base = prefect_env(root / "prefect-home", prefect_url)
    base.pop("PREFECT_LOGGING_LEVEL", None)  # flow-run logs in the worker's log: the failure messages
    env = {k: v for k, v in base.items() if not k.startswith(("FLOWML_", "MLFLOW_", "AWS_", "BENTOML_"))}
    missing = str(root / "no-aws-config")  # boto3 finds no credentials anywhere
    env.update(
        AWS_CONFIG_FILE=missing,
        AWS_SHARED_CREDENTIALS_FILE=missing,
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # `python` in the MLproject command is this venv's
        FLOWML_DEPLOYMENTS_DIR=str(root / "deployments"),
        BENTOML_HOME=str(root / "bentoml"),
        BENTOML_DO_NOT_TRACK="true",
        **{MARKER: marker},
    )
    return env


def _server_env(client_env: dict[str, str], s3_url: str) -> dict[str, str]:
    """The server's: S3 endpoint and credentials; new experiments' artifacts behind its proxy."""
    env = {k: v for k, v in client_env.items() if not k.startswith(("PREFECT_", "FLOWML_", "AWS_"))}
    env.update(DUMMY_ENV, FLOWML_SERVER_S3_ENDPOINT_URL=s3_url, FLOWML_ARTIFACT_ROOT="mlflow-artifacts:")
    return env


def _process_pool(name: str) -> dict[str, Any]:
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    return {"name": name, "type": "process", "base_job_template": template}


def _prefect(topo: Topology, method: str, path: str, **kwargs: Any) -> Any:
    # Like Prefect's own client: 429/502/503 are retried (its server answers 503 when its SQLite is busy).
    for attempt in range(6):
        resp = httpx.request(method, f"{topo.prefect_url}{path}", timeout=30, **kwargs)
        if resp.status_code not in (429, 502, 503):
            break
        time.sleep(0.5 * 2**attempt)
    if resp.status_code >= 400:
        raise topo.fail(f"Prefect {method} {path}: {resp.status_code} {resp.text[:1000]}")
    return resp.json()


def _flow_run_state(topo: Topology, flow_run_id: str) -> str | None:
    run = _prefect(topo, "GET", f"/flow_runs/{flow_run_id}")
    state = str(run["state_type"]) if run.get("state_type") else None
    return state if state in TERMINAL else None


def _forget(topo: Topology, created: dict[str, list[str]]) -> None:
    """Delete what this test made on the session's Prefect server (automations, deployments, pool), so
    later tests see none of it (best effort: the server dies with the session anyway)."""
    for kind in ("automations", "deployments", "work_pools"):
        for ident in created.get(kind, []):
            with contextlib.suppress(httpx.HTTPError):
                httpx.delete(f"{topo.prefect_url}/{kind}/{ident}", timeout=10)


def _port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1):
        return True
    return False


def _reap_marked(marker: str, found: dict[int, str]) -> None:
    """Record, then SIGKILL, every process still carrying this test's marker (the test fails on them;
    they must not outlive it either way)."""
    for pid in pids_with_env(MARKER, marker):
        try:
            found[pid] = (
                Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            )
        except OSError:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _in_this_process(monkeypatch: pytest.MonkeyPatch, tracking_uri: str) -> Iterator[None]:
    """Point this process's flowml at the server (for the local predict the endpoint is compared to)."""
    from flowml.client import clear_backend_cache
    from flowml.settings import get_settings
    from flowml.tracking.fluent import _reset_for_tests

    def reset() -> None:
        _reset_for_tests()
        get_settings.cache_clear()
        clear_backend_cache()

    for name in list(os.environ):
        if name.startswith(("FLOWML_", "MLFLOW_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLOWML_TRACKING_URI", tracking_uri)
    reset()
    try:
        yield
    finally:
        reset()


def _features() -> Any:
    from sklearn.datasets import load_wine

    return load_wine(as_frame=True).data.rename(columns=lambda c: c.replace("/", "_")).head(5)


def _assert_run_in_postgres(uri: str, run_id: str) -> None:
    engine = sa.create_engine(uri)
    try:
        with engine.connect() as conn:
            where = {"r": run_id}
            status = conn.execute(sa.text("SELECT status FROM runs WHERE run_id = :r"), where).scalar_one()
            rows = conn.execute(sa.text("SELECT key, value FROM params WHERE run_id = :r"), where)
            params = {key: value for key, value in rows}
            accuracy = conn.execute(
                sa.text("SELECT value FROM latest_metrics WHERE run_id = :r AND key = 'accuracy'"), where
            ).scalar_one()
    finally:
        engine.dispose()
    assert (status, params.get("C")) == ("FINISHED", "0.5")
    assert accuracy > 0.8


def _assert_model_in_s3(s3_client: Any, artifact_root: str, model_id: str) -> None:
    """The files of the run's logged model (MLflow 3: ``<experiment>/models/<model_id>/artifacts``)."""
    bucket, prefix = artifact_root.removeprefix("s3://").split("/", 1)
    pages = s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
    keys = sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))
    model_keys = {k.rsplit("/", 1)[-1] for k in keys if f"/models/{model_id}/artifacts/" in k}
    assert {"MLmodel", "model.pkl", "input_example.json"} <= model_keys, keys


def test_team_topology_end_to_end(
    postgres_uri: str,
    s3_endpoint_url: str,
    s3_artifact_root: str,
    s3_client: Any,
    prefect_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flowml.deploy.targets import LocalTarget
    from flowml.projects import load_project
    from flowml.projects._execute import FLOW_RUN_ID_TAG
    from flowml.projects.compile import flow_name_for

    marker = uuid.uuid4().hex
    pool = f"flowml-topology-{marker[:8]}"
    topo = Topology(tmp_path, prefect_server, marker)
    topo.env = _client_env(tmp_path, prefect_server, marker)
    started: dict[str, int] = {}  # name -> pid (each leads its process group)
    stray: dict[int, str] = {}
    deployments = LocalTarget(tmp_path / "deployments")
    endpoint = ""
    with contextlib.ExitStack() as stack:  # unwinds in reverse: parts, CLIs, the endpoint, then the reaper
        stack.callback(_reap_marked, marker, stray)
        created: dict[str, list[str]] = {"work_pools": [pool]}
        stack.callback(_forget, topo, created)
        stack.callback(deployments.stop, MODEL)  # the endpoint outlives the worker's flow run: stop it by PID
        stack.callback(topo.kill_short_lived)
        # -- the parts, started together: flowml server (after `flowml db upgrade`), worker, dispatcher ----
        port = free_port()
        url = topo.flowml_url = topo.env["FLOWML_TRACKING_URI"] = f"http://127.0.0.1:{port}"
        server_env = _server_env(topo.env, s3_endpoint_url)
        migrate = topo.cli("db", "upgrade", postgres_uri, env=server_env)  # what the team's server runs first
        _prefect(topo, "POST", "/work_pools/", json=_process_pool(pool))  # `prefect work-pool create`
        py = [sys.executable, "-m"]
        worker_cmd = [*py, "prefect", "worker", "start", "--pool", pool, "--type", "process"]
        worker = stack.enter_context(background_process(worker_cmd, topo.env, topo.log("worker"), tmp_path))
        # -- 1. the project, deployed for the pool (and the deployment flow + automations) ----------------
        deploy_project = topo.cli(
            "project", "deploy", str(PROJECT), "--name", "topology", "--work-pool", pool, "-P", "C=0.5",
            "--experiment-name", "topology",
        )  # fmt: skip
        setup = topo.cli("deploy", "setup", "--model", MODEL, "--work-pool", pool)
        topo.finish(migrate)
        server_log = topo.log("flowml-server")
        _, server = stack.enter_context(
            flowml_server_popen(postgres_uri, s3_artifact_root, env=server_env, log=server_log, port=port)
        )
        dispatch_cmd = [*py, "flowml.cli", "deploy", "dispatch", "--poll-interval", "0.2"]
        dispatcher = stack.enter_context(
            background_process(dispatch_cmd, topo.env, topo.log("dispatcher"), tmp_path)
        )
        topo.procs.update({"flowml server": server, "worker": worker, "dispatcher": dispatcher})
        started.update({name: proc.pid for name, proc in topo.procs.items()})
        stack.callback(stop_groups, [worker, dispatcher, server])  # unwinds first: they stop in parallel
        topo.mark("flowml server up")
        topo.finish(deploy_project)
        setup_result = json.loads(topo.finish(setup).strip().splitlines()[-1])
        created.update(automations=setup_result["automations"], deployments=[setup_result["deployment_id"]])
        topo.mark("project deploy + deploy setup")
        # ... and run from Prefect: a flow run created through the API, executed by the worker
        flow_name = flow_name_for(load_project(str(PROJECT)), "main")
        project_deployment = _prefect(topo, "GET", f"/deployments/name/{flow_name}/topology")
        created["deployments"].append(project_deployment["id"])
        assert project_deployment["work_pool_name"] == pool
        flow_run = _prefect(topo, "POST", f"/deployments/{project_deployment['id']}/create_flow_run", json={})
        state = topo.wait_for("the project flow run", lambda: _flow_run_state(topo, flow_run["id"]), 150)
        assert state == "COMPLETED", topo.diagnostics()
        topo.mark("project flow run on the worker")

        # -- 2. its tracking run in Postgres, its model in S3 -----------------------------------------------
        client = FlowmlClient(url)
        experiment = client.get_experiment_by_name("topology")
        assert experiment is not None
        (run,) = client.search_runs(
            [experiment.experiment_id], f"tags.`{FLOW_RUN_ID_TAG}` = '{flow_run['id']}'"
        )
        run_id = run.info.run_id
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/")  # the clients never touch S3 themselves
        _assert_run_in_postgres(postgres_uri, run_id)
        (output,) = client.get_run(run_id).outputs.model_outputs  # the run's log_model
        _assert_model_in_s3(s3_client, s3_artifact_root, output.model_id)

        # -- 3. registered and promoted through the server ------------------------------------------------
        client.create_registered_model(MODEL)
        version = str(client.create_model_version(MODEL, f"runs:/{run_id}/model", run_id=run_id).version)
        client.set_registered_model_alias(MODEL, "champion", version)
        topo.mark("tracking/S3 checks, register, alias")
        features = _features()  # while the deployment runs

        # -- 4. the automation runs the deployment flow on the worker; the endpoint answers ----------------
        def deployed() -> dict[str, Any] | None:
            found = httpx.get(f"{url}/api/flowml/deployments", params={"name": MODEL}, timeout=10).json()
            done = [d for d in found["deployments"] if d["status"] in ("SERVING", "FAILED")]
            return next((d for d in done if d["version"] == version), None)

        record = topo.wait_for(f"a deployment record of {MODEL} v{version}", deployed, 240, every=0.5)
        assert record["status"] == "SERVING", f"{record['error']}\n{topo.diagnostics()}"
        topo.mark(f"alias -> SERVING (deployment flow on the worker; {record['details'].get('timings')})")
        endpoint = record["endpoint_url"]
        serving = deployments.state(MODEL)
        assert serving is not None and serving["backend_alive"] and serving["front_alive"], serving
        started.update(bentoml=serving["backend"]["pid"], proxy=serving["front"]["pid"])
        marked = set(pids_with_env(MARKER, marker))  # so the leftover check below would see them
        assert set(started.values()) <= marked, (started, marked)
        payload = {"dataframe_split": features.to_dict(orient="split")}
        resp = httpx.post(f"{endpoint}/invocations", json=payload, timeout=60)
        assert resp.status_code == 200, resp.text
        with _in_this_process(monkeypatch, url):
            from flowml.pyfunc import load_model
            from flowml.serving import to_jsonable

            local = to_jsonable(load_model(f"models:/{MODEL}@champion").predict(features))
        assert resp.json()["predictions"] == local
        topo.mark("prediction == local predict")

        # -- 5. the record links version → event → flow run → bento → endpoint -----------------------------
        (event,) = [e for e in client.list_registry_events(name=MODEL) if e.event_type == "alias.moved"]
        assert record["event_id"] == event.id and event.delivered_time is not None
        assert record["details"]["trigger"] == "@champion"
        deploy_run = _prefect(topo, "GET", f"/flow_runs/{record['flow_run_id']}")
        assert deploy_run["deployment_id"] == setup_result["deployment_id"]
        assert deploy_run["work_pool_name"] == pool
        assert deploy_run["parameters"]["version"] == version
        assert deploy_run["parameters"]["event_id"] == str(event.id)
        bento_name, bento_version = record["bento_tag"].split(":")
        assert (tmp_path / "bentoml" / "bentos" / bento_name / bento_version / "bento.yaml").is_file()
        assert serving["backend"]["bento_tag"] == record["bento_tag"]
        assert serving["url"] == endpoint and serving["info"]["record_id"] == record["id"]
        finished = topo.wait_for(
            "the deployment flow run to finish", lambda: _flow_run_state(topo, record["flow_run_id"]), 60
        )
        assert finished == "COMPLETED", topo.diagnostics()
        topo.mark("lineage checks")

    topo.mark("teardown (stop by PID)")
    # -- everything started here was stopped, by PID -------------------------------------------------------
    leftovers = {name: pid for name, pid in started.items() if pid_alive(pid) or group_alive(pid)}
    assert not leftovers, f"still running after teardown: {leftovers}"
    assert not stray, f"processes started by this test still running after teardown: {stray}"
    assert endpoint and not _port_open(endpoint), f"{endpoint} still accepts connections"
    assert not _port_open(url), f"{url} still accepts connections"
