"""The SQL store: the only package that opens a database session.

Repository functions live in :mod:`flowml.store.tracking` and :mod:`flowml.store.run_data`;
:class:`Database` owns the engine, sessions, retries and schema checks.
"""

from flowml.store.db import HEAD_REVISION, Database, normalize_db_uri

__all__ = ["HEAD_REVISION", "Database", "normalize_db_uri"]
