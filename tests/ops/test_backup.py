"""``flowml db backup`` / ``restore``: round trips on SQLite and PostgreSQL, local and S3 artifacts.

Each round trip fills a store (experiments, runs, params, a metric history, text and binary artifacts,
a registered model with a version, a tag and an alias), backs it up, restores it into a *fresh*
database and a *different* empty artifact root, and compares everything through the public client.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowml.exceptions import ResourceAlreadyExists
from flowml.ops.backup import backup, restore
from tests.ops.conftest import row_count

BLOB = bytes(range(256)) * 40  # 10 KiB of every byte value


def _client(
    uri: str, artifact_root: str, monkeypatch: pytest.MonkeyPatch, endpoint: str | None = None
) -> Any:
    from flowml.client import FlowmlClient, clear_backend_cache
    from flowml.settings import get_settings

    monkeypatch.setenv("FLOWML_ARTIFACT_ROOT", artifact_root)
    if endpoint:
        monkeypatch.setenv("FLOWML_S3_ENDPOINT_URL", endpoint)
    get_settings.cache_clear()
    clear_backend_cache()
    return FlowmlClient(uri)


def fill(client: Any, tmp_path: Path) -> dict[str, Any]:
    from flowml.entities import Metric, Param

    exp = client.create_experiment("backup-exp", tags={"team": "ml"})
    runs = []
    for n in range(3):
        run_id = client.create_run(exp, run_name=f"r{n}").info.run_id
        metrics = [Metric("loss", 1.0 / (step + 1) + n, 1_700_000_000_000 + step, step) for step in range(50)]
        client.log_batch(run_id, metrics=metrics, params=[Param("lr", str(0.1 * (n + 1)))], synchronous=True)
        client.log_text(run_id, f"run {n}\n", "notes/readme.txt")
        blob = tmp_path / f"blob{n}.bin"
        blob.write_bytes(BLOB + bytes([n]))
        client.log_artifact(run_id, str(blob), "data")
        client.set_terminated(run_id)
        runs.append(run_id)
    client.log_text(runs[0], "flavors: {}\n", "model/MLmodel")
    client.create_registered_model("backup-model")
    client.create_model_version("backup-model", f"runs:/{runs[0]}/model", run_id=runs[0])
    client.set_model_version_tag("backup-model", "1", "validated", "yes")
    client.set_registered_model_alias("backup-model", "champion", "1")
    return {"experiment": exp, "runs": runs}


def describe(client: Any, made: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Everything a user would look at, in a form that does not depend on where files live."""
    out: dict[str, Any] = {"experiment": client.get_experiment(made["experiment"]).name}
    for run_id in made["runs"]:
        run = client.get_run(run_id)
        history = [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, "loss")]
        files = {}
        dst = tmp_path / f"dl-{uuid.uuid4().hex}"
        for path in ("notes/readme.txt", f"data/blob{made['runs'].index(run_id)}.bin"):
            local = client.download_artifacts(run_id, path, str(dst))
            files[path] = hashlib.sha256(Path(local).read_bytes()).hexdigest()
        out[run_id] = {
            "name": run.info.run_name,
            "params": run.data.params,
            "metrics": run.data.metrics,
            "history": history,
            "files": files,
            "checksums": client.get_artifact_checksums(run_id),
        }
    from flowml.artifacts import get_artifact_repository
    from flowml.settings import get_settings

    mv = client.get_model_version_by_alias("backup-model", "champion")
    where = client.get_model_version_download_uri("backup-model", "1")
    repo = get_artifact_repository(where, s3_endpoint_url=get_settings().s3_endpoint_url)
    out["model"] = (mv.version, mv.run_id, mv.tags, b"".join(repo.open_stream("MLmodel")))
    return out


@pytest.fixture
def fresh_uri(store_uri: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if store_uri.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'flowml.db'}"
        return
    cluster = request.getfixturevalue("postgres_cluster")
    name = cluster.unique_name("restored")
    yield cluster.create_database(name)
    cluster.drop_database(name)


def test_round_trip_local_artifacts(
    store_uri: str, fresh_uri: str, artifact_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(store_uri, artifact_root, monkeypatch)
    made = fill(client, tmp_path)
    expected = describe(client, made, tmp_path)
    counts = {
        t: row_count(store_uri, t) for t in ("runs", "metrics", "params", "artifact_files", "model_versions")
    }

    manifest = backup(store_uri, tmp_path / "bk", artifact_root=artifact_root)
    assert manifest["database"]["counts"]["metrics"] == 150
    assert manifest["artifacts"]["files"] == 3 * 2 + 1 and manifest["artifacts"]["outside_root"] == []

    shutil.rmtree(artifact_root)  # the disaster: the original files are gone
    new_root = str(tmp_path / "new-artifacts")
    report = restore(tmp_path / "bk", fresh_uri, artifact_root=new_root)
    assert report.verified_files == 7 and report.artifacts_copied == 7
    assert report.relocated["runs.artifact_uri"] == 3

    restored = _client(fresh_uri, new_root, monkeypatch)
    assert describe(restored, made, tmp_path) == expected
    assert {t: row_count(fresh_uri, t) for t in counts} == counts
    assert restored.get_run(made["runs"][0]).info.artifact_uri.startswith(new_root)
    # ids keep counting where they stopped (PostgreSQL sequences, SQLite AUTOINCREMENT come back too)
    assert int(restored.create_experiment("after-restore")) > int(made["experiment"])
    new_run = restored.create_run(made["experiment"]).info.run_id
    assert restored.create_model_version("backup-model", f"runs:/{new_run}", run_id=new_run).version == "2"
    restored.create_registered_model("second-model")

    with pytest.raises(ResourceAlreadyExists) as err:  # never over an existing store
        restore(tmp_path / "bk", fresh_uri, artifact_root=str(tmp_path / "third"))
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"


@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_sqlite_backup_while_a_writer_keeps_writing(
    store_uri: str, artifact_root: str, tmp_path: Path
) -> None:
    """The online backup API copies one consistent snapshot while another connection writes (WAL)."""
    from flowml.client.local import SqlBackend
    from flowml.entities import Metric

    backend = SqlBackend(store_uri, artifact_root)
    run_id = backend.create_run("0", "u", 1, {}, "busy").info.run_id
    stop, written = threading.Event(), [0]

    def write() -> None:
        step = 0
        while not stop.is_set():
            backend.log_batch(run_id, [Metric("m", float(i), 1, step * 100 + i) for i in range(100)], [], [])
            step += 1
            written[0] = step * 100

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while written[0] < 2000:
            stop.wait(0.01)
        manifest = backup(store_uri, tmp_path / "live")
        at_backup = written[0]
    finally:
        stop.set()
        writer.join()
        backend.close()
    copied = manifest["database"]["counts"]["metrics"]
    assert copied % 100 == 0  # whole transactions only
    assert 2000 <= copied <= at_backup + 100
    assert row_count(f"sqlite:///{tmp_path / 'live' / 'flowml.db'}", "metrics") == copied
    assert manifest["artifacts"] is None


@pytest.mark.s3
@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_round_trip_s3_to_s3_and_s3_to_local(
    store_uri: str,
    s3_artifact_root: str,
    s3_endpoint_url: str,
    s3_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = _client(store_uri, s3_artifact_root, monkeypatch, s3_endpoint_url)
    made = fill(client, tmp_path)
    expected = describe(client, made, tmp_path)
    buckets = [f"flowml-bk-{uuid.uuid4().hex[:12]}" for _ in range(3)]
    for bucket in buckets:
        s3_client.create_bucket(Bucket=bucket)

    to_local = backup(
        store_uri, tmp_path / "bk-local", artifact_root=s3_artifact_root, s3_endpoint_url=s3_endpoint_url
    )
    to_s3 = backup(
        store_uri,
        tmp_path / "bk-s3",
        artifact_root=s3_artifact_root,
        artifacts_to=f"s3://{buckets[0]}/backups/1",
        s3_endpoint_url=s3_endpoint_url,
    )
    assert to_local["artifacts"]["files"] == to_s3["artifacts"]["files"] == 7
    assert sum(p.is_file() for p in (tmp_path / "bk-local" / "artifacts").rglob("*")) == 7

    for n, (folder, bucket) in enumerate(
        ((tmp_path / "bk-local", buckets[1]), (tmp_path / "bk-s3", buckets[2]))
    ):
        uri = f"sqlite:///{tmp_path / f'restored{n}.db'}"
        root = f"s3://{bucket}/store"
        report = restore(folder, uri, artifact_root=root, s3_endpoint_url=s3_endpoint_url)
        assert report.verified_files == 7
        restored = _client(uri, root, monkeypatch, s3_endpoint_url)
        assert describe(restored, made, tmp_path) == expected
        assert restored.get_run(made["runs"][1]).info.artifact_uri.startswith(root + "/")


@pytest.mark.parametrize("store_uri", ["sqlite"], indirect=True)
def test_cli_backup_and_restore(
    store_uri: str, artifact_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(store_uri, artifact_root, monkeypatch)
    made = fill(client, tmp_path)
    expected = describe(client, made, tmp_path)
    env = {**os.environ}
    cli = [sys.executable, "-m", "flowml.cli", "db"]
    out = subprocess.run(
        [*cli, "backup", store_uri, str(tmp_path / "bk"), "--artifact-root", artifact_root],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    assert "artifacts: 7 file(s)" in out.stdout
    target = f"sqlite:///{tmp_path / 'again.db'}"
    new_root = str(tmp_path / "again-artifacts")
    out = subprocess.run(
        [*cli, "restore", str(tmp_path / "bk"), target, "--artifact-root", new_root],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    assert "verified: 7 recorded artifact(s) match their sha256" in out.stdout
    assert describe(_client(target, new_root, monkeypatch), made, tmp_path) == expected
    again = subprocess.run(
        [*cli, "restore", str(tmp_path / "bk"), target], capture_output=True, text=True, env=env
    )
    assert again.returncode == 1 and "RESOURCE_ALREADY_EXISTS" in again.stderr


def test_postgres_password_never_reaches_the_command_line() -> None:
    from flowml.store.backup import _pg_target

    conninfo, env = _pg_target("postgresql://flow:s3cr%40t@db.example:5433/flowml?sslmode=require")
    assert "s3cr" not in conninfo
    assert conninfo == "postgresql://flow@db.example:5433/flowml?sslmode=require"
    assert env["PGPASSWORD"] == "s3cr@t"
