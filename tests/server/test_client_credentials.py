"""flowml's own REST client against ``flowml server --auth``: credentials come from the environment
(``FLOWML_TRACKING_USERNAME/PASSWORD/TOKEN`` or MLflow's ``MLFLOW_TRACKING_*`` names) and go with every
request — tracking calls, artifact uploads and downloads through the proxy, and model loading."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flowml.client import FlowmlClient
from flowml.exceptions import FlowmlError
from flowml.settings import get_settings
from tests.server.conftest import ADMIN

_VARS = [
    f"{prefix}_TRACKING_{name}"
    for prefix in ("FLOWML", "MLFLOW")
    for name in ("USERNAME", "PASSWORD", "TOKEN")
]


@pytest.fixture
def server(auth_server: str) -> str:
    return auth_server


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for var in _VARS:
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def _user(url: str, name: str) -> str:
    password = f"{name}-password"
    r = httpx.post(
        f"{url}/api/2.0/mlflow/users/create", json={"username": name, "password": password}, auth=ADMIN
    )
    assert r.status_code == 200, r.text
    return password


def test_basic_credentials_cover_tracking_and_proxied_artifacts(
    server: str, env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.setenv("FLOWML_TRACKING_USERNAME", "alice")
    env.setenv("FLOWML_TRACKING_PASSWORD", _user(server, "alice"))
    client = FlowmlClient(server)
    exp_id = client.create_experiment("alice-exp")
    run = client.create_run(exp_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    client.log_metric(run.info.run_id, "m", 0.5)
    src = tmp_path / "note.txt"
    src.write_text("hello")
    client.log_artifact(run.info.run_id, str(src), "docs")
    back = client.download_artifacts(run.info.run_id, "docs/note.txt", str(tmp_path / "out"))
    assert Path(back).read_text() == "hello"
    # the creator got MANAGE, so the run is really alice's (not an anonymous success)
    perm = httpx.get(
        f"{server}/api/2.0/mlflow/experiments/permissions/get",
        params={"experiment_id": exp_id, "username": "alice"},
        auth=ADMIN,
    )
    assert perm.json()["experiment_permission"]["permission"] == "MANAGE"


def test_mlflow_token_variable_is_honoured_and_wrong_credentials_fail_cleanly(
    server: str, env: pytest.MonkeyPatch
) -> None:
    password = _user(server, "bob")
    token = httpx.post(
        f"{server}/api/2.0/mlflow/users/tokens", json={"name": "ci"}, auth=("bob", password)
    ).json()["token"]
    env.setenv("MLFLOW_TRACKING_TOKEN", token)
    assert FlowmlClient(server).create_experiment("bob-exp")

    env.delenv("MLFLOW_TRACKING_TOKEN")
    env.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    env.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    get_settings.cache_clear()
    with pytest.raises(FlowmlError) as err:
        FlowmlClient(server).create_experiment("nope")
    assert err.value.error_code == "UNAUTHENTICATED"

    env.delenv("MLFLOW_TRACKING_USERNAME")
    env.delenv("MLFLOW_TRACKING_PASSWORD")
    get_settings.cache_clear()
    with pytest.raises(FlowmlError) as err:
        FlowmlClient(server).create_experiment("anonymous")
    assert err.value.error_code == "UNAUTHENTICATED"


def test_model_load_through_the_proxy_sends_credentials(server: str, env: pytest.MonkeyPatch) -> None:
    from sklearn.linear_model import LogisticRegression

    import flowml
    import flowml.sklearn

    env.setenv("FLOWML_TRACKING_USERNAME", "carol")
    env.setenv("FLOWML_TRACKING_PASSWORD", _user(server, "carol"))
    env.setenv("FLOWML_TRACKING_URI", server)
    get_settings.cache_clear()
    client = FlowmlClient(server)
    exp_id = client.create_experiment("carol-exp")
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    with flowml.start_run(experiment_id=exp_id):
        info = flowml.sklearn.log_model(model, name="model")
    assert info.artifact_path.startswith("mlflow-artifacts:/")  # the logged model's files, via the proxy
    loaded = flowml.pyfunc.load_model(info.artifact_path)
    assert list(loaded.predict([[0.0], [3.0]])) == [0, 1]
