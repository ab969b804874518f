"""Helpers shared by gc and backup: opening an existing store, an S3 client, URI checks."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy.engine import make_url

from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.store import Database, normalize_db_uri

__all__ = ["dialect_of", "open_existing_store", "s3_client", "sqlite_path"]


def dialect_of(uri: str) -> str:
    try:
        name = make_url(normalize_db_uri(uri)).get_backend_name()
    except Exception as exc:  # sqlalchemy.exc.ArgumentError and friends
        raise InvalidParameterValue(f"Invalid database URI {uri!r}: {exc}") from exc
    if name not in ("sqlite", "postgresql"):
        raise InvalidParameterValue(f"Unsupported database {name!r} in {uri!r}: sqlite or postgresql")
    return name


def sqlite_path(uri: str) -> str:
    database = make_url(normalize_db_uri(uri)).database
    if not database or database == ":memory:":
        raise InvalidParameterValue(f"{uri!r} is not a SQLite database file")
    return os.path.abspath(os.path.expanduser(database))


def open_existing_store(uri: str) -> Database:
    """A :class:`Database` on a store that must already exist at the current schema.

    Never creates one: a mistyped SQLite path or an empty PostgreSQL database is an error here,
    not a new empty store.
    """
    from flowml.store.migrate import revision

    if dialect_of(uri) == "sqlite" and not os.path.isfile(sqlite_path(uri)):
        raise ResourceDoesNotExist(f"No SQLite database at {sqlite_path(uri)}")
    if revision(uri) is None:
        raise ResourceDoesNotExist(f"No flowml schema in {uri!r} (run 'flowml db upgrade' to create one)")
    return Database(uri, artifact_root="")


def s3_client(endpoint_url: str | None) -> Any:
    """A boto3 S3 client with botocore's standard retries (endpoint: ``FLOWML_S3_ENDPOINT_URL``)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5})
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
