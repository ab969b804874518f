"""With a Prefect server: dispatcher → Prefect event → automation → flow run (served) → live endpoint."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from flowml.client import FlowmlClient
from flowml.deploy.records import DeploymentRecord, records
from tests.deploy.conftest import DeployEnv
from tests.fixtures.prefect_server import prefect_env
from tests.fixtures.processes import background_process

pytestmark = pytest.mark.slow


def _wait_serving(
    name: str, version: str, timeout: float, procs: list[subprocess.Popen[bytes]]
) -> DeploymentRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), "worker or dispatcher exited"
        for rec in records().list(name=name):
            if rec.version == version and rec.status in ("SERVING", "FAILED"):
                return rec
        time.sleep(0.3)
    raise TimeoutError(f"no deployment of {name} v{version} after {timeout}s")


def test_transition_triggers_the_prefect_deployment(
    deploy_env: DeployEnv, prefect_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flowml.deploy.setup import setup

    client = FlowmlClient()
    version = deploy_env.register("wine-prefect")
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    with temporary_settings(updates={PREFECT_API_URL: prefect_server}):
        result = setup(model="wine-prefect")
    assert len(result["automations"]) == 2
    env = prefect_env(deploy_env.root / "prefect-client", prefect_server)
    env.pop("PREFECT_LOGGING_LEVEL", None)
    cli = [sys.executable, "-m", "flowml.cli_deploy"]
    with (
        background_process([*cli, "worker"], env, deploy_env.root / "worker.log") as worker,
        background_process(
            [*cli, "dispatch", "--poll-interval", "0.2"], env, deploy_env.root / "dispatch.log"
        ) as disp,
    ):
        time.sleep(3)  # the worker registers the deployment and starts polling
        client.transition_model_version_stage("wine-prefect", version, "Production", reason="ship it")
        rec = _wait_serving("wine-prefect", version, 150, [worker, disp])
    assert rec.status == "SERVING", rec.error
    event = next(e for e in client.list_registry_events(name="wine-prefect") if e.id == rec.event_id)
    assert event.payload["to_stage"] == "Production" and event.delivered_time is not None
    assert rec.flow_run_id and rec.bento_tag and rec.details["trigger"] == "Production"
    assert rec.details["flow_run_url"].endswith(f"/flow-runs/flow-run/{rec.flow_run_id}")  # lineage link
    httpx_client = httpx.Client(base_url=prefect_server, timeout=10)
    flow_run = httpx_client.get(f"/flow_runs/{rec.flow_run_id}").json()
    assert flow_run["parameters"]["version"] == version and flow_run["parameters"]["event_id"] == str(
        event.id
    )
    payload = {"dataframe_split": deploy_env.x.head(5).to_dict(orient="split")}
    served = httpx.post(f"{rec.endpoint_url}/invocations", json=payload, timeout=30).json()["predictions"]
    assert served == deploy_env.local_predict("wine-prefect", version)
