"""Database side of ``flowml db backup`` / ``restore``.

* SQLite: the sqlite3 online backup API, in one step: it reads one consistent snapshot while a
  server keeps writing (WAL readers never block the writer), and the copy is integrity-checked.
* PostgreSQL: ``pg_dump -Fc`` / ``pg_restore`` from PATH. The row counts in the manifest come from
  the very snapshot pg_dump dumps (a REPEATABLE READ transaction exports it, ``--snapshot`` uses it).
  The password travels in ``PGPASSWORD``, never on a command line.
* :func:`relocate_artifact_uris` rewrites artifact URIs after restoring into another bucket/directory.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, create_engine, func, inspect, literal, select, text, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from flowml.exceptions import FlowmlError, InvalidParameterValue, ResourceAlreadyExists
from flowml.store.db import normalize_db_uri
from flowml.store.registry_tables import ModelVersionRow
from flowml.store.tables import ExperimentRow, LoggedModelRow, RunRow, metadata, table_of

__all__ = [
    "artifact_files",
    "backup_postgres",
    "backup_sqlite",
    "experiment_locations",
    "relocate_artifact_uris",
    "restore_postgres",
    "restore_sqlite",
    "table_counts",
]

logger = logging.getLogger(__name__)

_URI_COLUMNS = (
    (table_of(ExperimentRow), "artifact_location"),
    (table_of(RunRow), "artifact_uri"),
    (table_of(LoggedModelRow), "artifact_location"),
    (table_of(ModelVersionRow), "source"),
    (table_of(ModelVersionRow), "storage_location"),
)


def _counts(conn: Connection) -> dict[str, int]:
    present = set(inspect(conn).get_table_names())
    return {
        t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
        for t in metadata.sorted_tables
        if t.name in present
    }


@contextmanager
def _engine(uri: str, isolation_level: str | None = None) -> Iterator[Connection]:
    options = {"isolation_level": isolation_level} if isolation_level else {}
    engine = create_engine(normalize_db_uri(uri), poolclass=NullPool, **options)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def table_counts(uri: str) -> dict[str, int]:
    """Rows per flowml table."""
    with _engine(uri) as conn:
        return _counts(conn)


# -- SQLite --------------------------------------------------------------------------------------
def _sqlite_copy(src_path: str, dst_path: str) -> None:
    src = sqlite3.connect(src_path, timeout=30)
    try:
        dst = sqlite3.connect(dst_path)
        try:
            src.backup(dst)  # pages=-1: the whole database from one read snapshot
            status = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if status != "ok":
                raise FlowmlError(f"SQLite integrity check of {dst_path} failed: {status}")
        finally:
            dst.close()
    finally:
        src.close()


def backup_sqlite(src_path: str, dest: Path) -> None:
    """Copy the live database at ``src_path`` to the new file ``dest``."""
    if not os.path.isfile(src_path):
        raise InvalidParameterValue(f"No SQLite database at {src_path}")
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    try:
        _sqlite_copy(src_path, str(tmp))
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def restore_sqlite(backup_file: Path, target_path: str) -> None:
    """Restore into ``target_path``, which must not exist yet (or be an empty file)."""
    if os.path.exists(target_path) and os.path.getsize(target_path) > 0:
        raise ResourceAlreadyExists(f"Refusing to restore over the existing database {target_path}")
    Path(target_path).parent.mkdir(parents=True, exist_ok=True)
    _sqlite_copy(str(backup_file), target_path)


# -- PostgreSQL ----------------------------------------------------------------------------------
def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise FlowmlError(f"{name} not found on PATH (install the PostgreSQL client tools)")
    return found


def _pg_target(uri: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password, and the environment carrying it."""
    url = make_url(normalize_db_uri(uri))
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    bare = URL.create("postgresql", url.username, None, url.host, url.port, url.database, url.query)
    conninfo = bare.render_as_string(hide_password=False)
    return conninfo, env


def _run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise FlowmlError(f"{Path(cmd[0]).name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def backup_postgres(uri: str, dest: Path) -> dict[str, int]:
    """``pg_dump -Fc`` to ``dest``; returns the row counts of the dumped snapshot."""
    conninfo, env = _pg_target(uri)
    tmp = dest.with_name(dest.name + ".partial")
    with _engine(uri, isolation_level="REPEATABLE READ") as conn:
        conn.execute(text("SET TRANSACTION READ ONLY"))
        snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        counts = _counts(conn)
        cmd = [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges"]
        try:
            _run([*cmd, f"--snapshot={snapshot}", f"--file={tmp}", f"--dbname={conninfo}"], env)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
            conn.rollback()
    return counts


def restore_postgres(dump: Path, uri: str) -> None:
    """``pg_restore`` into the database at ``uri``, which must have no tables yet."""
    with _engine(uri) as conn:
        tables = inspect(conn).get_table_names()
    if tables:
        raise ResourceAlreadyExists(f"Refusing to restore into a database that has tables ({tables[0]}, ...)")
    conninfo, env = _pg_target(uri)
    cmd = [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    _run([*cmd, f"--dbname={conninfo}", str(dump)], env)


# -- after a restore -----------------------------------------------------------------------------
def relocate_artifact_uris(uri: str, old_root: str, new_root: str) -> dict[str, int]:
    """Rewrite every stored artifact URI under ``old_root`` to the same path under ``new_root``
    (experiments, runs, logged models, model-version sources). Returns the rows changed per column."""
    old, new = old_root.rstrip("/"), new_root.rstrip("/")
    if not old or old == new:
        return {}
    changed: dict[str, int] = {}
    engine = create_engine(normalize_db_uri(uri), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for table, name in _URI_COLUMNS:
                column = table.c[name]
                under = func.substr(column, 1, len(old) + 1) == old + "/"
                result = conn.execute(
                    update(table)
                    .where((column == old) | under)
                    .values({name: literal(new) + func.substr(column, len(old) + 1)})
                )
                changed[f"{table.name}.{name}"] = int(result.rowcount or 0)
    finally:
        engine.dispose()
    logger.info("relocated artifact URIs %s -> %s: %s", old, new, changed)
    return changed


def artifact_files(uri: str) -> Iterator[tuple[str, str, int, str]]:
    """``(run artifact_uri, path, file_size, sha256)`` of every artifact checksum the store recorded."""
    from flowml.store.tables import ArtifactFileRow

    files, runs = table_of(ArtifactFileRow), table_of(RunRow)
    with _engine(uri) as conn:
        rows = conn.execute(
            select(runs.c.artifact_uri, files.c.path, files.c.file_size, files.c.sha256)
            .join(runs, runs.c.run_id == files.c.run_id)
            .order_by(files.c.run_id, files.c.path)
        )
        for row in rows:
            yield row.artifact_uri, row.path, int(row.file_size), row.sha256


def experiment_locations(uri: str) -> list[str]:
    experiments = table_of(ExperimentRow)
    with _engine(uri) as conn:
        return sorted(conn.execute(select(experiments.c.artifact_location).distinct()).scalars())
