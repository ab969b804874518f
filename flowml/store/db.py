"""Engines, sessions and schema management for the SQL store.

* SQLite: WAL, ``busy_timeout``, ``foreign_keys``, case-sensitive LIKE, and ``BEGIN IMMEDIATE`` on
  every write transaction so concurrent writers queue on the busy timeout instead of failing with
  "database is locked" (a deferred transaction that upgrades to a write cannot wait). The WAL is
  checkpointed by a background thread, not by the commit that fills it (:mod:`.wal_checkpoint`).
* PostgreSQL (``postgresql+psycopg://``): plain READ COMMITTED; deadlocks and serialization
  failures are retried. A pooled connection is pinged before use only after being idle for a
  while (a ping is a round trip, and a busy server's next transaction follows the last within
  milliseconds); a write that finds its connection dead before committing is retried on a new one.
* Schema: a new database is created at the migration head under a file/advisory lock; a database
  at an older revision is refused with a pointer to ``flowml db upgrade``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool, QueuePool

from flowml.exceptions import FlowmlError, TemporarilyUnavailable
from flowml.store import _pg_arrays
from flowml.store.side_read import SideReader
from flowml.store.tables import metadata
from flowml.store.wal_checkpoint import BACKSTOP_PAGES, WalCheckpointer

__all__ = ["HEAD_REVISION", "Database", "WriteBusy", "normalize_db_uri"]

logger = logging.getLogger(__name__)

#: The newest Alembic revision in ``store/migrations/versions``; a test keeps it in step.
HEAD_REVISION = "0007_logged_model_metrics"

T = TypeVar("T")

_RETRYABLE_PG_CODES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
#: PostgreSQL: a pooled connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_S = 1.0


class WriteBusy(Exception):
    """:meth:`Database.write_nowait` found the write lock taken (nothing was written)."""


def normalize_db_uri(uri: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` and use the psycopg 3 driver for them."""
    for prefix in ("postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix) :]
    return uri


def _is_retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code in _RETRYABLE_PG_CODES:
        return True
    return isinstance(exc, OperationalError) and "locked" in str(exc.orig).lower()


class Database:
    """One engine per process and URI; hands out read and write sessions.

    Building it does no I/O: the engine is created and the schema checked on first use.
    """

    def __init__(
        self,
        uri: str,
        artifact_root: str,
        *,
        busy_timeout_ms: int = 30_000,
        max_retries: int = 8,
    ) -> None:
        self.uri = normalize_db_uri(uri)
        self.artifact_root = artifact_root
        self.dialect = make_url(self.uri).get_backend_name()
        self._busy_timeout_ms = busy_timeout_ms
        self._max_retries = max_retries
        self._engine: Engine | None = None
        self._write_engine: Engine | None = None
        self._nowait_engine: Engine | None = None
        # SQLite has one writer at a time. Threads of this process queue on a fair lock instead of
        # on SQLite's busy handler, which sleeps in growing steps and makes tail latency explode.
        self._write_lock: threading.Lock | None = threading.Lock() if self.dialect == "sqlite" else None
        # The database file's path when the store is a SQLite file (not ``:memory:``), else None.
        database = make_url(self.uri).database if self.dialect == "sqlite" else None
        in_file = database not in (None, "", ":memory:")
        self._sqlite_file = str(Path(str(database)).expanduser()) if in_file else None
        self._side = self._new_side_reader()
        self._checkpointer = self._new_checkpointer()

    # -- engine -------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        if self._engine is None:
            engine = self._create_engine()
            ensure_schema(engine, self.uri, self.artifact_root)
            self._engine = engine
            self._write_engine = engine.execution_options(flowml_write=True)
            self._nowait_engine = engine.execution_options(flowml_write=True, flowml_nowait=True)
        return self._engine

    def _create_engine(self) -> Engine:
        if self.dialect == "sqlite":
            database = make_url(self.uri).database
            if database and database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                self.uri,
                connect_args={"check_same_thread": False, "timeout": self._busy_timeout_ms / 1000},
                poolclass=NullPool if database in (None, "", ":memory:") else None,
            )
            _configure_sqlite(engine, self._busy_timeout_ms)
            return engine
        engine = create_engine(self.uri, pool_size=5, max_overflow=10)
        _ping_when_idle(engine, PING_AFTER_IDLE_S)
        # Metric points travel as binary array parameters (store/_pg_arrays.py).
        event.listen(engine, "connect", lambda dbapi_conn, _record: _pg_arrays.register(dbapi_conn.adapters))
        return engine

    def pool_status(self) -> dict[str, int] | None:
        """Connections of this process's pool (``size``, ``checked_out``, ``checked_in``, ``overflow``).

        ``None`` before the engine exists or for a pool that does not count (SQLite ``:memory:``'s
        NullPool). SQLite files get SQLAlchemy's default QueuePool too; its writers also queue on
        this process's write lock, which the pool does not show.
        """
        pool = self._engine.pool if self._engine is not None else None
        if not isinstance(pool, QueuePool):
            return None
        return {
            "size": int(pool.size()),
            "checked_out": int(pool.checkedout()),
            "checked_in": int(pool.checkedin()),
            "overflow": max(0, int(pool.overflow())),  # negative while the pool is still filling
        }

    @property
    def side_reader(self) -> SideReader | None:
        """A second read connection on its own thread, for a read to run one statement in
        parallel (:mod:`flowml.store.side_read`): SQLite files only (PostgreSQL reads wait on the
        server, not on this process's GIL; ``:memory:`` databases are per connection)."""
        return self._side

    def _new_side_reader(self) -> SideReader | None:
        if self._sqlite_file is None:
            return None
        return SideReader(lambda: self.engine.raw_connection())

    def _new_checkpointer(self) -> WalCheckpointer | None:
        path = self._sqlite_file
        if path is None:
            return None
        # Its own connection, outside the pool: the pool's size and metrics stay the requests'.
        return WalCheckpointer(lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False))

    @property
    def checkpointer(self) -> WalCheckpointer | None:
        """The WAL checkpoint thread's handle (SQLite files only)."""
        return self._checkpointer

    def dispose(self) -> None:
        side, self._side = self._side, self._new_side_reader()
        if side is not None:
            side.close()
        checkpointer, self._checkpointer = self._checkpointer, self._new_checkpointer()
        if checkpointer is not None:
            checkpointer.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._write_engine = None
            self._nowait_engine = None

    # -- sessions -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextlib.contextmanager
    def _write_once(self, *, nowait: bool = False) -> Iterator[Session]:
        _ = self.engine
        engine = self._nowait_engine if nowait else self._write_engine
        assert engine is not None
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session
        if self._checkpointer is not None:
            self._checkpointer.note_commit()

    def write(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn(session)`` in one write transaction, retrying lock timeouts and deadlocks, and
        a connection found dead before the commit was sent (after it, the outcome is unknown)."""
        delay = 0.01
        for attempt in range(self._max_retries + 1):
            committing = False
            try:
                with self._write_lock or contextlib.nullcontext(), self._write_once() as session:
                    result = fn(session)
                    committing = True
                return result
            except DBAPIError as exc:
                if not (_is_retryable(exc) or (exc.connection_invalidated and not committing)):
                    raise
                if attempt == self._max_retries:
                    raise TemporarilyUnavailable(
                        f"The database stayed busy after {attempt + 1} attempts: {exc.orig}"
                    ) from exc
                logger.debug("retrying write after %s (attempt %d)", exc.orig, attempt + 1)
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    @property
    def can_write_nowait(self) -> bool:
        """Whether :meth:`write_nowait` is available: SQLite files (one writer, in this process)."""
        return self._sqlite_file is not None

    def write_nowait(self, fn: Callable[[Session], T]) -> T:
        """:meth:`write` for a caller that must not wait (the server's event loop): when another
        thread of this process or another process holds SQLite's write lock, raises
        :class:`WriteBusy` at once instead of waiting, and nothing is written. No retries.
        """
        assert self.can_write_nowait and self._write_lock is not None, "write_nowait needs a SQLite file"
        if not self._write_lock.acquire(blocking=False):
            raise WriteBusy
        try:
            with self._write_once(nowait=True) as session:
                return fn(session)
        finally:
            self._write_lock.release()


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """SQLAlchemy's ``pool_pre_ping``, but only for connections idle longer than ``idle_s``: one
    checked in a moment ago is handed out as is. A failed ping makes the pool replace it."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info["flowml_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn, record, _proxy):  # type: ignore[no-untyped-def]
        since = record.info.get("flowml_idle_since")
        if since is None or time.monotonic() - since < idle_s:  # new, or busy moments ago
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # any failure means a new connection
            raise DisconnectionError(f"ping failed: {exc}") from exc
        if not alive:
            raise DisconnectionError("ping failed")


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event (below) issue BEGIN, instead of the sqlite3 module.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA case_sensitive_like=ON")
        # Searches walk indexes of several tables: a 64 MiB page cache and memory-mapped reads keep
        # them off the read() syscall path (the defaults are 2 MiB and off).
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA mmap_size=268435456")
        # Checkpoints run on a background thread (Database's WalCheckpointer): a commit checkpoints
        # only when that has fallen far behind.
        cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        options = conn.get_execution_options()
        if options.get("flowml_nowait", False):
            _begin_nowait(conn.connection.dbapi_connection, busy_timeout_ms)
            return
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("flowml_write", False) else "BEGIN")


def _begin_nowait(dbapi_conn: Any, busy_timeout_ms: int) -> None:
    """``BEGIN IMMEDIATE`` without SQLite's busy wait: :class:`WriteBusy` when another connection
    writes. Only the write lock can wait in WAL mode: once it is held, nothing else does."""
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=0")
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc).lower() or "busy" in str(exc).lower():
                raise WriteBusy from exc
            raise
        finally:
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    finally:
        cursor.close()


# -- schema ------------------------------------------------------------------------------------
def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
        return row[0] if row else None


@contextlib.contextmanager
def _schema_lock(engine: Engine, uri: str) -> Iterator[None]:
    """Serialise schema creation between processes that open a new database at once."""
    url = make_url(uri)
    if url.get_backend_name() == "sqlite":
        database = url.database
        if not database or database == ":memory:":
            yield
            return
        lock_path = Path(database).expanduser().with_name(Path(database).name + ".lock")
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(727001)"))
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(727001)"))
            conn.commit()


def ensure_schema(engine: Engine, uri: str, artifact_root: str) -> None:
    """Create a new database at the head revision; refuse one at another revision."""
    revision = current_revision(engine)
    if revision == HEAD_REVISION:
        return
    if revision is None:
        with _schema_lock(engine, uri):
            if current_revision(engine) is None:
                _create_at_head(engine, artifact_root)
            revision = current_revision(engine)
    if revision != HEAD_REVISION:
        shown = make_url(uri).render_as_string(hide_password=True)
        raise FlowmlError(
            f"Detected out-of-date database schema (found revision {revision!r}, expected "
            f"{HEAD_REVISION!r}). Take a backup of your database, then run "
            f"'flowml db upgrade {shown}' to migrate it.",
            error_code="INVALID_STATE",
        )


def _create_at_head(engine: Engine, artifact_root: str) -> None:
    """Create every table from the metadata and stamp the head revision, in one transaction.

    Equivalent to running the migrations (a test compares both) but far quicker, which keeps a
    first ``start_run`` on a fresh SQLite file fast. Also inserts the Default experiment.
    """
    from flowml.store.tracking import insert_default_experiment

    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS alembic_version "
                "(version_num VARCHAR(32) NOT NULL, "
                "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
            )
        )
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD_REVISION})
        insert_default_experiment(conn, artifact_root)
    logger.info("created flowml schema at revision %s", HEAD_REVISION)
