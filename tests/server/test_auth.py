"""``flowml server --auth``: default deny, 401 vs 403, per-resource permissions, creator MANAGE,
searches narrowed in SQL (the route x role matrix, and a rule for every route: test_auth_matrix.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import serve_in_thread
from tests.server.conftest import ADMIN

API = "/api/2.0/mlflow"


@pytest.fixture
def server(auth_server: str) -> str:
    return auth_server


def _client(url: str, auth: tuple[str, str] | None = None, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url + API, auth=auth, headers=headers, timeout=30)


def _make_user(url: str, name: str) -> tuple[str, str]:
    creds = (name, f"{name}-password")
    r = _client(url, ADMIN).post("/users/create", json={"username": name, "password": creds[1]})
    assert r.status_code == 200, r.text
    return creds


def test_no_credentials_is_401_and_bad_credentials_too(server: str) -> None:
    anon = _client(server)
    r = anon.get("/experiments/get", params={"experiment_id": "0"})
    assert (r.status_code, r.json()["error_code"]) == (401, "UNAUTHENTICATED")
    wrong = _client(server, (ADMIN[0], "not-the-password"))
    assert wrong.get("/experiments/get", params={"experiment_id": "0"}).status_code == 401
    assert (
        _client(server, token="flowml_forged").post("/experiments/create", json={"name": "x"}).status_code
        == 401
    )
    assert httpx.get(f"{server}/health").status_code == 200  # public


def test_permissions_read_edit_manage_and_creator_manage(server: str) -> None:
    alice, bob = _make_user(server, "alice"), _make_user(server, "bob")
    a, b = _client(server, alice), _client(server, bob)
    exp_id = a.post("/experiments/create", json={"name": "alice-exp"}).json()["experiment_id"]
    run_id = a.post("/runs/create", json={"experiment_id": exp_id}).json()["run"]["info"]["run_id"]
    # bob has nothing on it: 403 everywhere, and no hint whether it exists
    assert b.get("/experiments/get", params={"experiment_id": exp_id}).status_code == 403
    assert b.get("/runs/get", params={"run_id": run_id}).status_code == 403
    assert b.get("/runs/get", params={"run_id": "0" * 32}).status_code == 403
    # READ: can look, cannot log
    grant = {"experiment_id": exp_id, "username": "bob", "permission": "READ"}
    assert a.post("/experiments/permissions/create", json=grant).status_code == 200
    assert b.get("/runs/get", params={"run_id": run_id}).status_code == 200
    log = {"run_id": run_id, "metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}]}
    assert b.post("/runs/log-batch", json=log).status_code == 403
    # EDIT: can log, cannot delete the experiment or grant
    assert a.patch("/experiments/permissions/update", json={**grant, "permission": "EDIT"}).status_code == 200
    assert b.post("/runs/log-batch", json=log).status_code == 200
    assert b.post("/experiments/delete", json={"experiment_id": exp_id}).status_code == 403
    assert b.post("/experiments/permissions/create", json={**grant, "username": "alice"}).status_code == 403
    # the creator holds MANAGE
    got = a.get("/experiments/permissions/get", params={"experiment_id": exp_id, "username": "alice"})
    assert got.json()["experiment_permission"]["permission"] == "MANAGE"
    # user management is for admins
    assert b.post("/users/create", json={"username": "eve", "password": "eve-password"}).status_code == 403
    assert b.get("/users/get", params={"username": "alice"}).status_code == 403
    assert b.get("/users/get", params={"username": "bob"}).status_code == 200


def test_searches_only_return_what_the_caller_may_read(server: str) -> None:
    alice, bob = _make_user(server, "alice"), _make_user(server, "bob")
    a, b = _client(server, alice), _client(server, bob)
    a.post("/experiments/create", json={"name": "private"})
    b.post("/experiments/create", json={"name": "bobs"})
    names = [
        e["name"] for e in b.post("/experiments/search", json={"max_results": 100}).json()["experiments"]
    ]
    assert names == ["bobs"]
    filtered = b.post("/experiments/search", json={"max_results": 100, "filter": "name LIKE 'p%'"}).json()
    assert filtered["experiments"] == []
    a.post("/registered-models/create", json={"name": "secret-model"})
    b.post("/registered-models/create", json={"name": "bob-model"})
    models = b.get("/registered-models/search").json()["registered_models"]
    assert [m["name"] for m in models] == ["bob-model"]
    assert b.get("/registered-models/get", params={"name": "secret-model"}).status_code == 403
    everything = _client(server, ADMIN).get("/registered-models/search").json()["registered_models"]
    assert {m["name"] for m in everything} == {"secret-model", "bob-model"}


def test_runs_search_requires_read_on_every_experiment(server: str) -> None:
    alice, bob = _make_user(server, "alice"), _make_user(server, "bob")
    exp_id = _client(server, alice).post("/experiments/create", json={"name": "e"}).json()["experiment_id"]
    r = _client(server, bob).post("/runs/search", json={"experiment_ids": [exp_id]})
    assert r.status_code == 403


def test_tokens_work_like_passwords(server: str) -> None:
    alice = _make_user(server, "alice")
    token = _client(server, alice).post("/users/tokens", json={"name": "ci"}).json()["token"]
    t = _client(server, token=token)
    assert t.post("/experiments/create", json={"name": "via-token"}).status_code == 200
    assert t.get("/users/current").json()["user"]["username"] == "alice"


def test_artifact_proxy_needs_permission_on_the_experiment(server: str) -> None:
    alice, bob = _make_user(server, "alice"), _make_user(server, "bob")
    exp_id = _client(server, alice).post("/experiments/create", json={"name": "e"}).json()["experiment_id"]
    proxy = f"{server}/api/2.0/mlflow-artifacts/artifacts/{exp_id}/run/artifacts/f.txt"
    assert httpx.put(proxy, content=b"x", auth=alice).status_code == 200
    assert httpx.get(proxy, auth=bob).status_code == 403
    assert httpx.get(proxy, auth=alice).content == b"x"
    assert httpx.get(f"{server}/api/2.0/mlflow-artifacts/artifacts", auth=bob).status_code == 403


def test_no_users_and_no_admin_means_everything_is_refused(tmp_path: Path) -> None:
    with serve_in_thread(f"sqlite:///{tmp_path / 'empty.db'}", str(tmp_path / "a"), auth=True) as url:
        assert (
            _client(url, ("anyone", "whatever-pw"))
            .get("/experiments/get", params={"experiment_id": "0"})
            .status_code
            == 401
        )


@pytest.mark.slow
def test_mlflow_client_with_basic_auth(server: str, tmp_path: Path) -> None:
    _make_user(server, "alice")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWML_", "MLFLOW_"))}
    env.update(
        MLFLOW_TRACKING_URI=server,
        MLFLOW_TRACKING_USERNAME="alice",
        MLFLOW_TRACKING_PASSWORD="alice-password",
    )
    code = """
        import mlflow
        mlflow.set_experiment("alice-mlflow")
        with mlflow.start_run():
            mlflow.log_metric("m", 1.0)
        print("ok")
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    env["MLFLOW_TRACKING_PASSWORD"] = "wrong-password"
    denied = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert denied.returncode != 0
    assert "401" in denied.stderr or "UNAUTHENTICATED" in denied.stderr
