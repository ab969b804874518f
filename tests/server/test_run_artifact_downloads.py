"""The UI's artifact downloads: ``GET /api/flowml/runs/artifacts/file`` (one file) and ``.../zip`` (a folder
or the whole run as a streamed zip), over local and S3 stores, with the path checks and the store boundary."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowml.artifacts import LocalArtifactRepository
from flowml.artifacts.zipstream import zip_chunks
from tests.artifacts.test_security import MALICIOUS
from tests.fixtures.server import serve_in_thread

API = "/api/2.0/mlflow"
ZIP = "/api/flowml/runs/artifacts/zip"
FILE = "/api/flowml/runs/artifacts/file"
PROXY = "/api/2.0/mlflow-artifacts/artifacts"
SECRET = b"server-side secret 4b1d: must never be zipped"

FILES = {
    "config.json": b'{"lr": 0.1}',
    "model/MLmodel": b"flavors:\n  python_function: {}\n",
    "model/data/weights.bin": bytes(range(256)) * 4096,  # 1 MiB: several read chunks
    "model/data/deep/er/leaf.txt": b"leaf",
    "model/caf\u00e9 \u6a21\u578b.txt": b"unicode name",
    "plots/loss.png": b"\x89PNG\r\n\x1a\n" + os.urandom(2000),
}


def _run(http: httpx.Client, name: str = "zips", location: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if location:
        body["artifact_location"] = location
    exp = http.post(f"{API}/experiments/create", json=body)
    assert exp.status_code == 200, exp.text
    run = http.post(f"{API}/runs/create", json={"experiment_id": exp.json()["experiment_id"]})
    info: dict[str, Any] = run.json()["run"]["info"]
    return info


def _upload(http: httpx.Client, run: dict[str, Any], files: dict[str, bytes]) -> None:
    base = run["artifact_uri"].split(":", 1)[1].lstrip("/")
    for path, data in files.items():
        assert http.put(f"{PROXY}/{base}/{path}", content=data).status_code == 200


def _unzip(content: bytes) -> dict[str, bytes]:
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert archive.testzip() is None  # every CRC checks out
    return {info.filename: archive.read(info) for info in archive.infolist()}


def _round_trip(http: httpx.Client, run: dict[str, Any]) -> None:
    rid = run["run_id"]
    for path, data in FILES.items():
        got = http.get(FILE, params={"run_id": rid, "path": path})
        assert (got.status_code, got.content) == (200, data), path
        assert got.headers["content-disposition"].startswith("attachment; filename=")
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["content-type"] == "application/octet-stream"
    unicode = http.get(FILE, params={"run_id": rid, "path": "model/caf\u00e9 \u6a21\u578b.txt"})
    assert "filename*=UTF-8''caf%C3%A9%20%E6%A8%A1%E5%9E%8B.txt" in unicode.headers["content-disposition"]
    gone = http.get(FILE, params={"run_id": rid, "path": "model/nope.txt"})
    assert (gone.status_code, gone.json()["message"]) == (
        404,
        f"Run {rid} has no artifact file 'model/nope.txt'",
    )
    assert http.get(FILE, params={"run_id": rid, "path": "model"}).status_code in (400, 404)  # a folder
    assert http.get(FILE, params={"run_id": rid}).status_code == 400  # path is required
    folder = http.get(ZIP, params={"run_id": rid, "path": "model"})
    assert folder.status_code == 200, folder.text
    assert folder.headers["content-type"] == "application/zip"
    assert folder.headers["x-content-type-options"] == "nosniff"
    assert folder.headers["content-disposition"].startswith('attachment; filename="model.zip"')
    assert "content-length" not in folder.headers  # streamed
    assert _unzip(folder.content) == {k: v for k, v in FILES.items() if k.startswith("model/")}

    nested = http.get(ZIP, params={"run_id": rid, "path": "model/data/"})
    assert _unzip(nested.content) == {
        "data/weights.bin": FILES["model/data/weights.bin"],
        "data/deep/er/leaf.txt": b"leaf",
    }
    everything = http.get(ZIP, params={"run_id": rid})
    assert _unzip(everything.content) == FILES
    assert f'filename="{rid}-artifacts.zip"' in everything.headers["content-disposition"]
    one = http.get(ZIP, params={"run_id": rid, "path": "config.json"})
    assert _unzip(one.content) == {"config.json": FILES["config.json"]}

    missing = http.get(ZIP, params={"run_id": rid, "path": "nope"})
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert missing.json()["message"] == f"Run {rid} has no artifact 'nope'"  # no server paths
    unknown = http.get(ZIP, params={"run_id": "0" * 32})
    assert unknown.status_code == 404
    assert http.get(ZIP).status_code == 400  # run_id is required


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    store = tmp_path / "store"
    store.mkdir()
    with serve_in_thread(f"sqlite:///{tmp_path / 'zip.db'}", str(store)) as url:
        yield httpx.Client(base_url=url, timeout=60), store


def test_folders_round_trip_through_a_local_store(local_server: tuple[httpx.Client, Path]) -> None:
    http, _ = local_server
    run = _run(http)
    _upload(http, run, FILES)
    _round_trip(http, run)


def test_folders_round_trip_through_s3(
    s3_endpoint_url: str, s3_artifact_root: str, s3_client: Any, tmp_path: Path
) -> None:
    with serve_in_thread(
        f"sqlite:///{tmp_path / 'zip.db'}", s3_artifact_root, s3_endpoint_url=s3_endpoint_url
    ) as url:
        http = httpx.Client(base_url=url, timeout=60)
        run = _run(http)
        _upload(http, run, FILES)
        _round_trip(http, run)

    # Without the proxy, runs get s3:// URIs under the destination: zipped from there too; a run whose
    # experiment points at another bucket or prefix is refused, whatever is stored there.
    bucket, prefix = s3_artifact_root[len("s3://") :].split("/", 1)
    s3_client.put_object(Bucket=bucket, Key="elsewhere/1/r/artifacts/secret.txt", Body=SECRET)
    with serve_in_thread(
        f"sqlite:///{tmp_path / 'direct.db'}",
        s3_artifact_root,
        s3_endpoint_url=s3_endpoint_url,
        serve_artifacts=False,
    ) as url:
        http = httpx.Client(base_url=url, timeout=60)
        inside = _run(http, "inside")
        assert inside["artifact_uri"].startswith(s3_artifact_root + "/")
        key = inside["artifact_uri"][len(f"s3://{bucket}/") :] + "/dir/a.txt"
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"direct")
        got = http.get(ZIP, params={"run_id": inside["run_id"], "path": "dir"})
        assert got.status_code == 200, got.text
        assert _unzip(got.content) == {"dir/a.txt": b"direct"}
        for location in (f"s3://{bucket}/elsewhere", f"s3://{bucket}/{prefix}-sibling"):
            outside = _run(http, f"outside {location}", location)
            refused = http.get(ZIP, params={"run_id": outside["run_id"]})
            assert (refused.status_code, refused.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
            assert "outside this server's artifact store" in refused.json()["message"]


def test_every_traversal_is_refused(local_server: tuple[httpx.Client, Path], tmp_path: Path) -> None:
    http, store = local_server
    (tmp_path / "canary.txt").write_bytes(SECRET)
    run = _run(http)
    _upload(http, run, {"a/b.txt": b"fine"})
    accepted = []
    for endpoint in (ZIP, FILE):
        for path in MALICIOUS:
            response = http.get(endpoint, params={"run_id": run["run_id"], "path": path})
            if response.status_code != 400 or response.json()["error_code"] != "INVALID_PARAMETER_VALUE":
                accepted.append((endpoint, path, response.status_code))
            assert SECRET not in response.content
    assert accepted == []
    # a symlink inside the run's folder that leads out of the store is refused, not followed
    run_dir = store / run["artifact_uri"].split(":", 1)[1].lstrip("/")
    (run_dir / "a" / "escape.txt").symlink_to(tmp_path / "canary.txt")
    linked = http.get(ZIP, params={"run_id": run["run_id"], "path": "a"})
    assert linked.status_code == 400 and SECRET not in linked.content
    linked = http.get(FILE, params={"run_id": run["run_id"], "path": "a/escape.txt"})
    assert linked.status_code == 400 and SECRET not in linked.content


def test_runs_stored_outside_the_server_store_are_refused(
    local_server: tuple[httpx.Client, Path], tmp_path: Path
) -> None:
    """An experiment's artifact_location is its creator's choice: the server must not read what it names."""
    http, _ = local_server
    outside = tmp_path / "elsewhere"
    run = _run(http, "points-elsewhere", str(outside))
    secret_dir = outside / run["run_id"] / "artifacts"
    secret_dir.mkdir(parents=True)
    (secret_dir / "id_rsa").write_bytes(SECRET)
    for endpoint, path in ((ZIP, None), (ZIP, "id_rsa"), (FILE, "id_rsa")):
        response = http.get(endpoint, params={"run_id": run["run_id"], "path": path})
        assert (response.status_code, response.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
        assert "outside this server's artifact store" in response.json()["message"]
        assert SECRET not in response.content


def test_without_the_proxy_local_runs_under_the_destination_are_zipped(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with serve_in_thread(f"sqlite:///{tmp_path / 'd.db'}", str(store), serve_artifacts=False) as url:
        http = httpx.Client(base_url=url, timeout=60)
        run = _run(http)
        run_dir = Path(run["artifact_uri"].removeprefix("file://"))
        assert run_dir.is_relative_to(store)
        (run_dir / "m").mkdir(parents=True)
        (run_dir / "m" / "x.txt").write_bytes(b"x")
        got = http.get(ZIP, params={"run_id": run["run_id"], "path": "m"})
        assert _unzip(got.content) == {"m/x.txt": b"x"}
        assert http.get(FILE, params={"run_id": run["run_id"], "path": "m/x.txt"}).content == b"x"


def test_memory_stays_bounded_for_a_large_folder(tmp_path: Path) -> None:
    """96 MiB of files (deflated and stored) zip with a Python heap peak of a few MiB, in small pieces."""
    root = tmp_path / "root"
    (root / "big").mkdir(parents=True)
    digests: dict[str, str] = {}
    for name, block in (("text.log", b"epoch 1 loss 0.25\n" * 3641), ("weights.npz", None)):
        sha = hashlib.sha256()
        with open(root / "big" / name, "wb") as fh:
            for _ in range(48):
                data = block if block is not None else os.urandom(1 << 20)
                fh.write(data)
                sha.update(data)
        digests[f"big/{name}"] = sha.hexdigest()
    repo = LocalArtifactRepository(str(root))
    _, files = repo.walk_files("big")
    out = tmp_path / "out.zip"
    pieces, largest = 0, 0
    tracemalloc.start()
    try:
        with open(out, "wb") as fh:
            for piece in zip_chunks(repo, [(f, f) for f in files]):
                pieces += 1
                largest = max(largest, len(piece))
                fh.write(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
    assert largest <= 2 * 1024 * 1024 and pieces > 48
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        for info in archive.infolist():
            sha = hashlib.sha256()
            with archive.open(info) as fh:
                while block := fh.read(1 << 20):
                    sha.update(block)
            assert sha.hexdigest() == digests[info.filename]
        kinds = {i.filename: i.compress_type for i in archive.infolist()}
    assert kinds == {"big/text.log": zipfile.ZIP_DEFLATED, "big/weights.npz": zipfile.ZIP_STORED}


def test_downloads_need_read_permission_on_the_run(tmp_path: Path) -> None:
    admin = ("admin", "admin-password")
    with serve_in_thread(
        f"sqlite:///{tmp_path / 'auth.db'}",
        str(tmp_path / "store"),
        auth=True,
        auth_admin_username=admin[0],
        auth_admin_password=admin[1],
    ) as url:
        root = httpx.Client(base_url=url, auth=admin, timeout=60)
        for user in ("alice", "bob"):
            r = root.post(f"{API}/users/create", json={"username": user, "password": f"{user}-password"})
            assert r.status_code == 200
        alice = httpx.Client(base_url=url, auth=("alice", "alice-password"), timeout=60)
        bob = httpx.Client(base_url=url, auth=("bob", "bob-password"), timeout=60)
        run = _run(alice)
        _upload(alice, run, {"d/f.txt": b"alice's"})
        assert httpx.get(url + ZIP, params={"run_id": run["run_id"]}).status_code == 401
        denied = bob.get(ZIP, params={"run_id": run["run_id"], "path": "d"})
        assert (denied.status_code, denied.json()["error_code"]) == (403, "PERMISSION_DENIED")
        assert bob.get(FILE, params={"run_id": run["run_id"], "path": "d/f.txt"}).status_code == 403
        grant = {"experiment_id": run["experiment_id"], "username": "bob", "permission": "READ"}
        assert alice.post(f"{API}/experiments/permissions/create", json=grant).status_code == 200
        assert _unzip(bob.get(ZIP, params={"run_id": run["run_id"], "path": "d"}).content) == {
            "d/f.txt": b"alice's"
        }
        assert bob.get(FILE, params={"run_id": run["run_id"], "path": "d/f.txt"}).content == b"alice's"
