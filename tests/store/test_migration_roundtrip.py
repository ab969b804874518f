"""``flowml db downgrade`` then ``upgrade`` with data in the store, on SQLite and PostgreSQL.

Downgrading below a revision drops what that revision added (registry 0002, deployment records 0003);
the tracking data created by 0001 survives the round trip and the store works again at head.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from flowml.client.local import SqlBackend
from flowml.entities import Metric, Param, RunTag
from flowml.store import HEAD_REVISION
from flowml.store.migrate import downgrade, revision, upgrade


def _tables(uri: str) -> set[str]:
    engine = create_engine(uri)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _count(uri: str, table: str) -> int:
    engine = create_engine(uri)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def test_downgrade_then_upgrade_keeps_tracking_data(
    store_uri: str, artifact_root: str, tmp_path: Path
) -> None:
    from flowml.deploy.records import _SqlRecords

    assert upgrade(store_uri, artifact_root) == HEAD_REVISION
    backend = SqlBackend(store_uri, artifact_root)
    exp = backend.create_experiment("kept", None, {"k": "v"})
    run_id = backend.create_run(exp, "u", 1, {}, "r").info.run_id
    metrics = [Metric("loss", 1.0 / (i + 1), 1000 + i, i) for i in range(20)]
    backend.log_batch(run_id, metrics, [Param("lr", "0.1")], [RunTag("t", "x")])
    backend.create_registered_model("m", {}, None, None)
    backend.create_model_version("m", f"runs:/{run_id}", run_id, {}, None, None, None)
    _SqlRecords(backend.db).create("m", "1", "local", status="SERVING")
    before = backend.get_run(run_id)
    history = backend.get_metric_history(run_id, "loss", 1000, None)
    backend.close()

    assert downgrade(store_uri, "0002_registry") == "0002_registry"  # every later revision undone
    assert "deployments" not in _tables(store_uri) and "model_versions" in _tables(store_uri)
    assert downgrade(store_uri, "0001_initial") == "0001_initial"
    assert not {"registered_models", "model_versions", "registry_events"} & _tables(store_uri)
    assert _count(store_uri, "metrics") == 20

    assert upgrade(store_uri, artifact_root, "0002_registry") == "0002_registry"
    assert upgrade(store_uri, artifact_root) == HEAD_REVISION == revision(store_uri)
    backend = SqlBackend(store_uri, artifact_root)
    after = backend.get_run(run_id)
    assert (after.info, after.data.params, after.data.tags, after.data.metrics) == (
        before.info, before.data.params, before.data.tags, before.data.metrics,
    )  # fmt: skip
    assert backend.get_metric_history(run_id, "loss", 1000, None) == history
    assert backend.get_experiment(exp).tags == {"k": "v"}
    assert _count(store_uri, "registered_models") == 0 and _count(store_uri, "deployments") == 0
    backend.create_registered_model("m", {}, None, None)  # the registry works again at head
    assert backend.create_model_version("m", f"runs:/{run_id}", run_id, {}, None, None, None).version == "1"
    backend.close()


def _old_store_with_a_run(uri: str, artifact_root: str) -> None:
    assert upgrade(uri, artifact_root, "0001_initial") == "0001_initial"
    engine = create_engine(uri)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, "
                "artifact_uri, lifecycle_stage) VALUES ('0123456789abcdef0123456789abcdef', 0, 'old', 'u', "
                "'FINISHED', 1, '/x', 'active')"
            )
        )
    engine.dispose()


def test_cli_upgrade_backs_up_an_existing_sqlite_database_first(tmp_path: Path, artifact_root: str) -> None:
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'old.db'}"
    _old_store_with_a_run(uri, artifact_root)
    cmd = [sys.executable, "-m", "flowml.cli", "db", "upgrade", uri]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    saved = out.split("backed up the database to ", 1)[1].splitlines()[0]
    assert Path(saved).name.startswith("old.db.pre-0001_initial-")
    assert revision(f"sqlite:///{saved}") == "0001_initial" and _count(f"sqlite:///{saved}", "runs") == 1
    assert revision(uri) == HEAD_REVISION
    again = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "backed up" not in again  # nothing to migrate, nothing to back up
    fresh = subprocess.run(
        [*cmd[:-1], f"sqlite:///{tmp_path / 'new.db'}"], capture_output=True, text=True, check=True
    )
    assert "backed up" not in fresh.stdout


def test_backup_before_upgrade_on_postgres_needs_a_directory(
    store_uri: str, artifact_root: str, tmp_path: Path
) -> None:
    from flowml.ops.backup import backup_before_upgrade

    _old_store_with_a_run(store_uri, artifact_root)
    if store_uri.startswith("postgresql"):
        assert backup_before_upgrade(store_uri) is None  # no silent dump into the working directory
    saved = backup_before_upgrade(store_uri, str(tmp_path / "pre-upgrade"))
    assert saved == str(tmp_path / "pre-upgrade")
    manifest = (tmp_path / "pre-upgrade" / "manifest.json").read_text()
    assert '"revision": "0001_initial"' in manifest and '"runs": 1' in manifest
