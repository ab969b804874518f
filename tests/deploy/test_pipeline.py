"""The deployment pipeline on the local target: real Bentos, real `bentoml serve`, real HTTP."""

from __future__ import annotations

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
