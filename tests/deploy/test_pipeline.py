"""The deployment pipeline on the local target: real Bentos, real `bentoml serve`, real HTTP."""

from __future__ import annotations

from typing import Any

import httpx

from flowml.client import FlowmlClient
from flowml.deploy.pipeline import deploy_version
from flowml.deploy.records import records
from flowml.deploy.targets import LocalTarget
from flowml.deploy.targets.local import _alive
from tests.deploy.conftest import DeployEnv


def _predict(url: str, env: DeployEnv) -> list[object]:
    payload = {"dataframe_split": env.x.head(5).to_dict(orient="split")}
    resp = httpx.post(f"{url}/invocations", json=payload, timeout=30)
    assert resp.status_code == 200, resp.text
    predictions: list[object] = resp.json()["predictions"]
    return predictions


def test_replace_failure_keeps_old_and_rollback(deploy_env: DeployEnv) -> None:
    client = FlowmlClient()
    v1 = deploy_env.register("wine", C=1.0)
    v2 = deploy_env.register("wine", C=0.001)
    v3 = deploy_env.register("wine", kind="broken")
    expected1, expected2 = (deploy_env.local_predict("wine", v) for v in (v1, v2))
    assert expected1 != expected2

    first = deploy_version("wine", v1)
    assert first.status == "SERVING", first.error
    url = first.endpoint_url
    assert url and _predict(url, deploy_env) == expected1
    assert first.bento_tag and first.details["labels"]["flowml.model_version"] == v1
    target = LocalTarget()
    old_backend = target.state("wine")["backend"]["pid"]  # type: ignore[index]

    second = deploy_version("wine", v2)
    assert second.status == "SERVING", second.error
    assert second.endpoint_url == url  # same endpoint, new model behind it
    assert _predict(url, deploy_env) == expected2
    assert not _alive(old_backend, "bentoml")
    assert records(client).get(first.id).status == "SUPERSEDED"

    broken = deploy_version("wine", v3)
    assert broken.status == "FAILED"
    assert broken.error and broken.error.startswith("smoke_test:") and "broken on purpose" in broken.error
    assert _predict(url, deploy_env) == expected2  # the previous deployment keeps serving
    assert records(client).get(second.id).status == "SERVING"

    again = deploy_version("wine", v2)
    assert again.status == "SKIPPED"

    # rollback: v1's Bento again (no build), the registry follows with reason "rollback"
    client.transition_model_version_stage("wine", v2, "Production")
    from flowml.deploy.rollback import rollback

    back = rollback("wine")
    assert back.status == "SERVING" and back.version == v1 and back.bento_tag == first.bento_tag
    assert "build" not in back.details["timings"]
    assert _predict(url, deploy_env) == expected1
    assert client.get_model_version("wine", v1).current_stage == "Production"
    assert client.get_model_version("wine", v2).current_stage == "Archived"
    moves = [(h.version, h.to_value) for h in client.get_registry_history("wine") if h.reason == "rollback"]
    assert (v1, "Production") in moves

    # The Bentos exist now, so the HTTP rollback (what the UI's button calls) and the button itself are
    # tested here rather than in a test that would build them again.
    _rollback_over_http_and_from_the_ui(deploy_env, url, (v1, v2, v3), (expected1, expected2))


def _rollback_over_http_and_from_the_ui(
    env: DeployEnv, url: str, versions: tuple[str, str, str], expected: tuple[list[object], list[object]]
) -> None:
    from playwright.sync_api import sync_playwright

    from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, serve_ui

    (v1, v2, v3), (expected1, expected2) = versions, expected
    client = FlowmlClient()
    with serve_ui(f"sqlite:///{env.root / 'flowml.db'}", str(env.root / "server-artifacts")) as server:
        api = httpx.Client(base_url=f"{server}/api/flowml", headers={"X-Flowml-User": "ops"}, timeout=180)
        missing = api.post("/deployments/rollback", json={"name": "no-such-model"})
        assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
        no_bento = api.post("/deployments/rollback", json={"name": "wine", "to_version": v3})  # FAILED only
        assert (no_bento.status_code, no_bento.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
        assert "no earlier deployment" in no_bento.json()["message"]

        r = api.post("/deployments/rollback", json={"name": "wine", "to_version": int(v2)})
        assert r.status_code == 200, r.text
        rec = r.json()["deployment"]
        assert (rec["status"], rec["version"], rec["actor"]) == ("SERVING", v2, "ops")
        assert rec["endpoint_url"] == url
        assert _predict(url, env) == expected2
        assert client.get_model_version("wine", v2).current_stage == "Production"
        moves = [(h.version, h.to_value, h.user_id) for h in client.get_registry_history("wine")]
        assert (v2, "Production", "ops") in moves

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                dialogs: list[str] = []

                def accept(dialog: Any) -> None:
                    dialogs.append(dialog.message)
                    dialog.accept()

                page.on("dialog", accept)
                page.goto(f"{server}/#/models/wine")
                page.wait_for_selector("#rollback")
                assert page.inner_text("#rollback") == f"Roll back to v{v1}"  # the one that served before
                page.click("#rollback")
                page.wait_for_selector("#rollback-result .ok-box", timeout=180_000)
                assert f"Rolled back: v{v1} serves at {url}" in page.inner_text("#rollback-result")
                assert dialogs and f"Roll back wine to the previous version (v{v1})" in dialogs[0]
                newest = page.locator("#deployments-table tbody tr").first
                assert newest.get_attribute("data-version") == v1
                assert newest.locator(".status").inner_text() == "SERVING"
            finally:
                browser.close()
    assert _predict(url, env) == expected1
    assert client.get_model_version("wine", v1).current_stage == "Production"
