"""``flowml db upgrade/downgrade``: Alembic migrations of the store, run programmatically."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from flowml.store.db import current_revision, normalize_db_uri

__all__ = ["downgrade", "revision", "upgrade"]

logger = logging.getLogger(__name__)

_SCRIPTS = Path(__file__).with_name("migrations")


def _config(uri: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("sqlalchemy.url", normalize_db_uri(uri).replace("%", "%%"))
    return config


#: PostgreSQL advisory-lock key held while migrating ("flowml" in ASCII): replicas that all run
#: ``flowml db upgrade`` on start (compose, Kubernetes init containers) take turns instead of racing.
_MIGRATION_LOCK_KEY = 0x666C6F776D6C


@contextmanager
def _migration_lock(uri: str) -> Iterator[None]:
    """Serialise migrations of one database across processes.

    PostgreSQL: a session-level advisory lock. SQLite: an exclusive ``flock`` on ``<db file>.migrate-lock``
    (Alembic's DDL runs on its own connection, so the database's own locks cannot order whole upgrades).
    """
    url = normalize_db_uri(uri)
    if url.startswith("postgresql"):
        with _pg_advisory_lock(url):
            yield
        return
    path = _sqlite_path(url)
    if path is None:
        yield
        return
    import fcntl

    with open(f"{path}.migrate-lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _sqlite_path(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    return None if not database or database == ":memory:" or database.startswith("file:") else database


@contextmanager
def _pg_advisory_lock(url: str) -> Iterator[None]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            conn.commit()  # a session-level lock: held until unlocked or the connection closes
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()


def upgrade(uri: str, artifact_root: str, target: str = "head") -> str:
    """Migrate the database at ``uri`` to ``target`` and make sure the Default experiment exists."""
    from alembic import command

    from flowml.store.tracking import insert_default_experiment

    with _migration_lock(uri):
        command.upgrade(_config(uri), target)
        engine = create_engine(normalize_db_uri(uri), poolclass=NullPool)
        try:
            rev = current_revision(engine)
            if rev is not None:  # every revision has the experiments table (created by the first one)
                with engine.begin() as conn:
                    insert_default_experiment(conn, artifact_root)
        finally:
            engine.dispose()
    logger.info("database at revision %s", rev)
    return rev or ""


def downgrade(uri: str, target: str) -> str:
    from alembic import command

    with _migration_lock(uri):
        command.downgrade(_config(uri), target)
    engine = create_engine(normalize_db_uri(uri), poolclass=NullPool)
    try:
        return current_revision(engine) or ""
    finally:
        engine.dispose()


def revision(uri: str) -> str | None:
    engine = create_engine(normalize_db_uri(uri), poolclass=NullPool)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()
