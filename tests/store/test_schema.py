"""Schema creation, Alembic migrations and the out-of-date refusal."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from flowml.exceptions import FlowmlError
from flowml.store import HEAD_REVISION, Database
from flowml.store.migrate import downgrade, revision, upgrade


def _describe(uri: str) -> dict[str, object]:
    """Tables, columns, keys and indexes of a live database, as the database reports them."""
    engine = create_engine(uri)
    try:
        insp = inspect(engine)
        schema: dict[str, object] = {}
        for table in sorted(insp.get_table_names()):
            schema[table] = {
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
                "pk": insp.get_pk_constraint(table)["constrained_columns"],
                "fks": sorted(
                    (fk["constrained_columns"], fk["referred_table"], fk["options"].get("ondelete"))
                    for fk in insp.get_foreign_keys(table)
                ),
                "indexes": sorted(
                    (ix["name"], ix["column_names"], ix.get("expressions"), ix["unique"])
                    for ix in insp.get_indexes(table)
                ),
                "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
            }
        return schema
    finally:
        engine.dispose()


@pytest.fixture
def second_store_uri(store_uri: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if store_uri.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'second.db'}"
    cluster = request.getfixturevalue("postgres_cluster")
    return str(cluster.create_database(cluster.unique_name("second")))


def test_fast_path_schema_equals_the_migrated_schema(
    store_uri: str, second_store_uri: str, artifact_root: str
) -> None:
    """A new database is built from the table models; it must be what the migrations build."""
    assert upgrade(store_uri, artifact_root) == HEAD_REVISION
    db = Database(second_store_uri, artifact_root)
    with db.read() as session:
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
    db.dispose()
    migrated, fast = _describe(store_uri), _describe(second_store_uri)
    assert migrated == fast
    assert {"experiments", "runs", "params", "metrics", "latest_metrics", "run_tags"} <= set(migrated)


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    from alembic.script import ScriptDirectory

    from flowml.store.migrate import _config

    assert ScriptDirectory.from_config(_config("sqlite://")).get_current_head() == HEAD_REVISION


def test_upgrade_keeps_data_and_downgrade_to_base_removes_tables(store_uri: str, artifact_root: str) -> None:
    upgrade(store_uri, artifact_root)
    db = Database(store_uri, artifact_root)
    with db.read() as session:
        assert (
            session.execute(text("SELECT name FROM experiments WHERE experiment_id = 0")).scalar()
            == "Default"
        )
    db.dispose()
    assert upgrade(store_uri, artifact_root) == HEAD_REVISION  # idempotent
    assert downgrade(store_uri, "base") == ""
    assert revision(store_uri) is None


def test_database_at_an_unknown_revision_is_refused(tmp_path: Path, artifact_root: str) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    conn.execute("INSERT INTO alembic_version VALUES ('0000_ancient')")
    conn.commit()
    conn.close()
    db = Database(f"sqlite:///{path}", artifact_root)
    with pytest.raises(FlowmlError) as err, db.read():
        pass
    assert "flowml db upgrade" in err.value.message


def test_sqlite_pragmas(tmp_path: Path, artifact_root: str) -> None:
    db = Database(f"sqlite:///{tmp_path / 'p.db'}", artifact_root, busy_timeout_ms=12_345)
    with db.read() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 12_345
    db.dispose()


def test_cli_db_upgrade(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'cli.db'}"
    out = subprocess.run(
        [sys.executable, "-m", "flowml.cli", "db", "upgrade", uri], capture_output=True, text=True, check=True
    )
    assert HEAD_REVISION in out.stdout
    current = subprocess.run(
        [sys.executable, "-m", "flowml.cli", "db", "current", uri], capture_output=True, text=True, check=True
    )
    assert current.stdout.strip() == HEAD_REVISION


def test_a_first_revision_database_with_data_upgrades_to_head_and_keeps_it(
    store_uri: str, artifact_root: str
) -> None:
    from flowml.client.local import SqlBackend
    from flowml.entities import Metric, Param, ViewType

    assert upgrade(store_uri, artifact_root, "0001_initial") == "0001_initial"
    engine = create_engine(store_uri)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, "
                "artifact_uri, lifecycle_stage) VALUES ('a' || '0123456789abcdef0123456789abcde', 0, 'old', "
                "'u', 'FINISHED', 1, '/x', 'active')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO params (run_id, key, value) "
                "VALUES ('a0123456789abcdef0123456789abcde', 'p', 'v')"
            )
        )
    engine.dispose()
    with pytest.raises(FlowmlError), Database(store_uri, artifact_root).read():  # refused until upgraded
        pass
    assert upgrade(store_uri, artifact_root) == HEAD_REVISION
    backend = SqlBackend(store_uri, artifact_root)
    run = backend.get_run("a0123456789abcdef0123456789abcde")
    assert run.info.run_name == "old"
    assert run.data.params == {"p": "v"}
    # 0004 copied the run's experiment and start time into params: the param-driven search finds it
    found = backend.search_runs(["0"], "params.p = 'v'", ViewType.ALL, 10, None, None)
    assert [r.info.run_id for r in found] == [run.info.run_id]
    backend.log_batch(run.info.run_id, [Metric("m", 1.0, 1, 0)], [Param("q", "w")], [])
    assert backend.get_run(run.info.run_id).data.metrics == {"m": 1.0}
    found = backend.search_runs(["0"], "params.q = 'w' and metrics.m = 1", ViewType.ALL, 10, None, None)
    assert [r.info.run_id for r in found] == [run.info.run_id]
    backend.close()


def test_concurrent_cli_upgrades_take_turns_on_one_database(store_uri: str, tmp_path: Path) -> None:
    """Replicas that all run `flowml db upgrade` on start (compose, Kubernetes init containers) must not
    race: every process succeeds and the database ends at head with one Default experiment."""
    cmd = [sys.executable, "-m", "flowml.cli", "db", "upgrade", store_uri]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        for _ in range(4)
    ]
    results = [(p.wait(timeout=180), p.communicate()) for p in procs]
    assert [code for code, _ in results] == [0, 0, 0, 0], [err for _, (_, err) in results]
    assert revision(store_uri) == HEAD_REVISION
    engine = create_engine(store_uri)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM experiments")).scalar() == 1
    finally:
        engine.dispose()
