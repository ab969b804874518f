"""``flowml db upgrade/downgrade``: Alembic migrations of the store, run programmatically."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import create_engine
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


def upgrade(uri: str, artifact_root: str, target: str = "head") -> str:
    """Migrate the database at ``uri`` to ``target`` and make sure the Default experiment exists."""
    from alembic import command

    from flowml.store.tracking import insert_default_experiment

    command.upgrade(_config(uri), target)
    engine = create_engine(normalize_db_uri(uri), poolclass=NullPool)
    try:
        rev = current_revision(engine)
        if rev is not None:  # every revision has the experiments table (created by the first one)
            with engine.begin() as conn:
                insert_default_experiment(conn, artifact_root)
        logger.info("database at revision %s", rev)
        return rev or ""
    finally:
        engine.dispose()


def downgrade(uri: str, target: str) -> str:
    from alembic import command

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
