"""Embedded mode: a stage transition alone yields a live endpoint; list/status/stop and the REST route."""

from __future__ import annotations

import json
import time

import httpx
from click.testing import CliRunner

from flowml.client import FlowmlClient
from flowml.deploy.embedded import start_embedded
from flowml.deploy.records import DeploymentRecord, records
from flowml.deploy.targets import LocalTarget
from flowml.deploy.targets.local import _alive
from tests.deploy.conftest import DeployEnv


def _wait_record(name: str, version: str, timeout: float = 120) -> DeploymentRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rec in records().list(name=name):
            if rec.version == version and rec.status in ("SERVING", "FAILED"):
                return rec
        time.sleep(0.2)
    raise TimeoutError(f"no deployment of {name} v{version} after {timeout}s")


def test_transition_alone_yields_a_live_endpoint(deploy_env: DeployEnv) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from flowml.cli_deploy import deploy
    from flowml.server.routes.deployments import router

    client = FlowmlClient()
    version = deploy_env.register("wine-embedded")
    dispatcher, deployer = start_embedded(client)
    try:
        client.transition_model_version_stage("wine-embedded", version, "Production")
        rec = _wait_record("wine-embedded", version)
    finally:
        dispatcher.stop()
        deployer.wait(timeout=60)
    assert rec.status == "SERVING", rec.error
    assert rec.event_id is not None and rec.details["trigger"] == "Production"
    events = {e.id: e for e in client.list_registry_events(name="wine-embedded")}
    assert events[rec.event_id].payload["to_stage"] == "Production"
    payload = {"dataframe_split": deploy_env.x.head(5).to_dict(orient="split")}
    resp = httpx.post(f"{rec.endpoint_url}/invocations", json=payload, timeout=30)
    assert resp.json()["predictions"] == deploy_env.local_predict("wine-embedded", version)

    runner = CliRunner()
    listed = runner.invoke(deploy, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(r["name"], r["endpoint_url"]) for r in json.loads(listed.output)] == [
        ("wine-embedded", rec.endpoint_url)
    ]
    shown = runner.invoke(deploy, ["status", "wine-embedded"])
    assert "(up) serving v1" in shown.output and str(rec.bento_tag) in shown.output

    app = FastAPI()
    app.state.backend = client.backend
    app.include_router(router, prefix="/api/flowml")
    with TestClient(app) as http:
        body = http.get("/api/flowml/deployments", params={"status": "SERVING"}).json()
        assert [d["endpoint_url"] for d in body["deployments"]] == [rec.endpoint_url]
        one = http.get(f"/api/flowml/deployments/{rec.id}").json()["deployment"]
        assert one["bento_tag"] == rec.bento_tag and one["serving_since"]

    state = LocalTarget().state("wine-embedded")
    assert state is not None
    stopped = runner.invoke(deploy, ["stop", "wine-embedded"])
    assert stopped.exit_code == 0 and "stopped" in stopped.output
    assert not _alive(state["backend"]["pid"], "bentoml") and not _alive(state["front"]["pid"], "_proxy")
    assert records(client).get(rec.id).status == "STOPPED"
