"""HTTP-level attacks on the server (MLflow's CVE history as the list): nothing escapes the root."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.fixtures.server import serve_in_thread

TRAVERSALS = [
    "../outside.txt",
    "a/../../outside.txt",
    "%2e%2e/outside.txt",
    "%2e%2e%2foutside.txt",
    "%252e%252e%252foutside.txt",
    "..%5coutside.txt",
    "a%5c..%5c..%5coutside.txt",
    "%2fetc%2fpasswd",
    "C:%5cwindows%5cwin.ini",
    "a%00b",
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "outside.txt").write_text("secret")
    with serve_in_thread(f"sqlite:///{tmp_path / 'store.db'}", str(root)) as url:
        yield url, tmp_path


def raw(
    url: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes, dict[str, str]]:
    """Send ``path`` byte-for-byte (httpx would normalise away the dot segments we are testing)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data, {k.lower(): v for k, v in response.getheaders()}


@pytest.mark.parametrize("attack", TRAVERSALS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_proxy_paths_cannot_escape_the_root(server: tuple[str, Path], attack: str, method: str) -> None:
    url, tmp = server
    before = sorted(p.name for p in tmp.iterdir())
    status, body, _ = raw(
        url, method, f"/api/2.0/mlflow-artifacts/artifacts/{attack}", b"pwned" if method == "PUT" else None
    )
    assert status in (400, 404), (status, body)
    if status == 400:
        assert json.loads(body)["error_code"] == "INVALID_PARAMETER_VALUE"
    assert b"secret" not in body
    assert (tmp / "outside.txt").read_text() == "secret"
    assert sorted(p.name for p in tmp.iterdir()) == before


@pytest.mark.parametrize("attack", ["../", "..%2f..", "%2e%2e", "/etc"])
def test_proxy_listing_cannot_escape_the_root(server: tuple[str, Path], attack: str) -> None:
    url, _ = server
    status, body, _ = raw(url, "GET", f"/api/2.0/mlflow-artifacts/artifacts?path={attack}")
    assert status == 400, body
    assert b"outside.txt" not in body


def test_run_artifact_listing_rejects_traversal(server: tuple[str, Path]) -> None:
    url, _ = server
    run = httpx.post(f"{url}/api/2.0/mlflow/runs/create", json={"experiment_id": "0"}).json()["run"]
    response = httpx.get(
        f"{url}/api/2.0/mlflow/artifacts/list", params={"run_id": run["info"]["run_id"], "path": "../../.."}
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("scheme", ["path", "file"])
def test_run_artifact_listing_stays_in_the_server_store(server: tuple[str, Path], scheme: str) -> None:
    """An experiment's artifact_location is its creator's choice: listing a run's artifacts must not
    enumerate a directory outside the server's store (here: the one holding outside.txt)."""
    url, tmp = server
    api = f"{url}/api/2.0/mlflow"
    location = str(tmp) if scheme == "path" else tmp.as_uri()
    exp = httpx.post(
        f"{api}/experiments/create", json={"name": f"elsewhere-{scheme}", "artifact_location": location}
    )
    assert exp.status_code == 200, exp.text
    run = httpx.post(f"{api}/runs/create", json={"experiment_id": exp.json()["experiment_id"]}).json()["run"]
    refused = httpx.get(f"{api}/artifacts/list", params={"run_id": run["info"]["run_id"]})
    assert refused.status_code == 400
    assert refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "outside this server's artifact store" in refused.json()["message"]
    assert "outside.txt" not in refused.text

    # A run in the server's own store lists what was uploaded for it through the proxy.
    mine = httpx.post(f"{api}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]
    put = httpx.put(
        f"{url}/api/2.0/mlflow-artifacts/artifacts/{_proxy_path(mine['artifact_uri'])}/notes/a.txt",
        content=b"abc",
    )
    assert put.status_code == 200, put.text
    listed = httpx.get(f"{api}/artifacts/list", params={"run_id": mine["run_id"]})
    assert listed.status_code == 200, listed.text
    assert [f["path"] for f in listed.json()["files"]] == ["notes"]
    inner = httpx.get(f"{api}/artifacts/list", params={"run_id": mine["run_id"], "path": "notes"}).json()
    assert inner["files"] == [{"path": "notes/a.txt", "is_dir": False, "file_size": 3}]


def _proxy_path(artifact_uri: str) -> str:
    """``mlflow-artifacts:/0/<run>/artifacts`` → ``0/<run>/artifacts`` (the proxy's path for it)."""
    assert artifact_uri.startswith("mlflow-artifacts:"), artifact_uri
    return artifact_uri.removeprefix("mlflow-artifacts:").lstrip("/")


def test_downloads_are_attachments_that_browsers_do_not_sniff(server: tuple[str, Path]) -> None:
    url, _ = server
    put = httpx.put(
        f"{url}/api/2.0/mlflow-artifacts/artifacts/x/page.html", content=b"<script>alert(1)</script>"
    )
    assert put.status_code == 200
    got = httpx.get(f"{url}/api/2.0/mlflow-artifacts/artifacts/x/page.html")
    assert got.content == b"<script>alert(1)</script>"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"].startswith("attachment")
    assert got.headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize(
    "ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_non_json_posts_are_refused_and_change_nothing(server: tuple[str, Path], ctype: str | None) -> None:
    url, _ = server
    headers = {"content-type": ctype} if ctype else {}
    status, body, _ = raw(url, "POST", "/api/2.0/mlflow/experiments/create", b'{"name": "csrf"}', headers)
    assert status == 400
    assert json.loads(body)["error_code"] == "INVALID_PARAMETER_VALUE"
    missing = httpx.get(f"{url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "csrf"})
    assert missing.status_code == 404


def test_unknown_host_header_is_refused(server: tuple[str, Path]) -> None:
    url, _ = server
    status, body, _ = raw(
        url, "GET", "/api/2.0/mlflow/experiments/get?experiment_id=0", headers={"Host": "evil.example"}
    )
    assert status == 403
    assert json.loads(body)["error_code"] == "PERMISSION_DENIED"
    ok = httpx.get(f"{url}/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
    assert ok.status_code == 200


def test_errors_are_mlflow_json_with_mlflow_status_codes(server: tuple[str, Path]) -> None:
    url, _ = server
    api = f"{url}/api/2.0/mlflow"
    assert httpx.post(f"{api}/experiments/create", json={"name": "dup"}).status_code == 200
    dup = httpx.post(f"{api}/experiments/create", json={"name": "dup"})
    assert (dup.status_code, dup.json()["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")
    missing = httpx.get(f"{api}/runs/get", params={"run_id": "f" * 32})
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    no_name = httpx.post(f"{api}/experiments/create", json={})
    assert (no_name.status_code, no_name.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    bad_filter = httpx.post(f"{api}/runs/search", json={"experiment_ids": ["0"], "filter": "metrics.x >"})
    assert (bad_filter.status_code, bad_filter.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    bad_token = httpx.post(f"{api}/runs/search", json={"experiment_ids": ["0"], "page_token": "!!!"})
    assert (bad_token.status_code, bad_token.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    not_json = httpx.post(f"{api}/runs/create", content=b"{", headers={"content-type": "application/json"})
    assert not_json.status_code == 400


def test_cli_server_binds_to_loopback_by_default() -> None:
    from click.testing import CliRunner

    from flowml.cli import server

    host_option = next(p for p in server.params if p.name == "host")
    assert host_option.default == "127.0.0.1"
    assert "--host" in CliRunner().invoke(server, ["--help"]).output
