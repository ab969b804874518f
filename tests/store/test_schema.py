"""Schema creation, Alembic migrations and the out-of-date refusal."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from flowml.exceptions import FlowmlError
from flowml.store import HEAD_REVISION, Database
from flowml.store.migrate import downgrade, revision, upgrade
from flowml.store.tables import metadata


def _schema_diff(uri: str) -> list[object]:
    engine = create_engine(uri)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))
    finally:
        engine.dispose()


def test_migrations_produce_exactly_the_table_definitions(store_uri: str, artifact_root: str) -> None:
    assert upgrade(store_uri, artifact_root) == HEAD_REVISION
    assert _schema_diff(store_uri) == []


def test_fast_path_schema_equals_the_migrated_schema(store_uri: str, artifact_root: str) -> None:
    db = Database(store_uri, artifact_root)
    with db.read() as session:
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD_REVISION
    db.dispose()
    assert _schema_diff(store_uri) == []


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
