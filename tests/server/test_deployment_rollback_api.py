"""``POST /api/flowml/deployments/rollback``: its errors and its access rule, without serving anything.

The rollback itself (a real Bento served again, over HTTP and from the UI's button) is tested in
``tests/deploy/test_pipeline.py``, where the Bentos are already built.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import serve_in_thread

ROLLBACK = "/api/flowml/deployments/rollback"
ADMIN = ("admin", "admin-password")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FLOWML_DEPLOYMENTS_DIR", str(tmp_path / "deployments"))
    with serve_in_thread(f"sqlite:///{tmp_path / 'r.db'}", str(tmp_path / "art")) as url:
        yield url


def _record(http: httpx.Client, version: str, status: str, bento: str | None = "svc:abc") -> None:
    body = {"name": "m", "version": version, "target": "local", "status": status, "bento_tag": bento}
    assert http.post("/api/flowml/deployments", json=body).status_code == 200


def _error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error_code"]


def test_errors_say_what_is_wrong(server: str, tmp_path: Path) -> None:
    http = httpx.Client(base_url=server, timeout=30)
    assert _error(http.post(ROLLBACK, json={"name": "m"})) == (404, "RESOURCE_DOES_NOT_EXIST")
    _record(http, "1", "STOPPED")
    _record(http, "2", "FAILED")
    nothing_serving = http.post(ROLLBACK, json={"name": "m"})
    assert _error(nothing_serving) == (400, "INVALID_PARAMETER_VALUE")
    assert "is not serving" in nothing_serving.json()["message"]
    for to in ("2", "7"):  # v2 only failed; v7 was never deployed
        refused = http.post(ROLLBACK, json={"name": "m", "to_version": to})
        assert _error(refused) == (400, "INVALID_PARAMETER_VALUE")
        assert "no earlier deployment" in refused.json()["message"]
    assert _error(http.post(ROLLBACK, json={"name": "m", "target": "k8s"})) == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert _error(http.post(ROLLBACK, json={"name": "m", "target": "local", "extra": 1}))[0] == 400
    assert _error(http.post(ROLLBACK, json={"name": "m", "to_version": ""}))[0] == 400
    assert _error(http.post(ROLLBACK, json={"name": ""}))[0] == 400
    assert not (tmp_path / "deployments").exists()  # nothing was started


def test_rollback_needs_manage_on_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWML_DEPLOYMENTS_DIR", str(tmp_path / "deployments"))
    with serve_in_thread(
        f"sqlite:///{tmp_path / 'a.db'}",
        str(tmp_path / "art"),
        auth=True,
        auth_admin_username=ADMIN[0],
        auth_admin_password=ADMIN[1],
    ) as url:
        admin = httpx.Client(base_url=url, auth=ADMIN, timeout=30)
        for user in ("alice", "bob"):
            body = {"username": user, "password": f"{user}-password"}
            assert admin.post("/api/2.0/mlflow/users/create", json=body).status_code == 200
        alice = httpx.Client(base_url=url, auth=("alice", "alice-password"), timeout=30)
        bob = httpx.Client(base_url=url, auth=("bob", "bob-password"), timeout=30)
        assert alice.post("/api/2.0/mlflow/registered-models/create", json={"name": "m"}).status_code == 200
        grant = {"name": "m", "username": "bob", "permission": "EDIT"}
        assert (
            alice.post("/api/2.0/mlflow/registered-models/permissions/create", json=grant).status_code == 200
        )
        assert httpx.post(url + ROLLBACK, json={"name": "m"}).status_code == 401
        assert _error(bob.post(ROLLBACK, json={"name": "m"})) == (
            403,
            "PERMISSION_DENIED",
        )  # EDIT is not enough
        # the creator (MANAGE) and admins get through to the request itself: no deployment yet
        assert _error(alice.post(ROLLBACK, json={"name": "m"})) == (404, "RESOURCE_DOES_NOT_EXIST")
        assert _error(admin.post(ROLLBACK, json={"name": "m"})) == (404, "RESOURCE_DOES_NOT_EXIST")
