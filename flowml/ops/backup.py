"""``flowml db backup`` / ``flowml db restore``: the database plus a copy of the artifact store.

A backup is a directory::

    manifest.json      what was backed up: schema revision, rows per table, artifact root and counts
    flowml.db          SQLite (online backup API)     | flowml.pgdump   PostgreSQL (pg_dump -Fc)
    artifacts/         the artifact store's files (unless --artifacts-to put them elsewhere, e.g. S3)

The database is copied *first*, then the artifacts: flowml uploads a file before it records it, so
every file the database copy names is already in the store when the artifact copy starts.

Restore loads the database into an empty target, copies the artifacts to the target root (by
default the original one), rewrites stored artifact URIs when the root changed, and verifies:
the revision and every table's row count against the manifest, and each recorded artifact's size
and sha256 against the restored files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowml.artifacts.base import iter_file
from flowml.artifacts.copy import copy_tree, is_empty
from flowml.artifacts.sweep import canonical_location, is_within
from flowml.exceptions import FlowmlError, InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from flowml.ops._common import dialect_of, s3_client, sqlite_path
from flowml.store import backup as store_backup
from flowml.store.migrate import revision

__all__ = ["MANIFEST", "RestoreReport", "backup", "backup_before_upgrade", "restore"]

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_FORMAT = 1
_DB_FILES = {"sqlite": "flowml.db", "postgresql": "flowml.pgdump"}


def _canonical(uri: str, what: str) -> str:
    location = canonical_location(uri)
    if location is None:
        raise InvalidParameterValue(f"{what} must be a local directory or s3:// URI, got {uri!r}")
    return location


class _S3:
    """One S3 client, made on first use."""

    def __init__(self, endpoint_url: str | None, client: Any) -> None:
        self.endpoint_url, self._client = endpoint_url, client

    def __call__(self, *locations: str) -> Any:
        if self._client is None and any(loc.startswith("s3://") for loc in locations):
            self._client = s3_client(self.endpoint_url)
        return self._client


def backup(
    db_uri: str,
    dest: str | os.PathLike[str],
    *,
    artifact_root: str | None = None,
    artifacts_to: str | None = None,
    s3_endpoint_url: str | None = None,
    s3_client: Any = None,
) -> dict[str, Any]:
    """Back up the store at ``db_uri`` (and the artifact store at ``artifact_root``) into ``dest``,
    a new or empty directory. Returns the manifest."""
    s3 = _S3(s3_endpoint_url, s3_client)
    dialect = dialect_of(db_uri)
    rev = revision(db_uri) if dialect != "sqlite" or os.path.isfile(sqlite_path(db_uri)) else None
    if rev is None:
        raise ResourceDoesNotExist(f"No flowml database at {db_uri!r}")
    out = Path(dest)
    if out.exists() and any(out.iterdir()):
        raise ResourceAlreadyExists(f"Backup directory {str(out)!r} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    db_file = out / _DB_FILES[dialect]
    started = time.time_ns() // 1_000_000
    if dialect == "sqlite":
        store_backup.backup_sqlite(sqlite_path(db_uri), db_file)
        counts = store_backup.table_counts(f"sqlite:///{db_file}")
    else:
        counts = store_backup.backup_postgres(db_uri, db_file)
    manifest: dict[str, Any] = {
        "format": _FORMAT,
        "flowml_version": __import__("flowml").__version__,
        "created_time": started,
        "database": {"dialect": dialect, "file": db_file.name, "revision": rev, "counts": counts},
        "artifacts": None,
    }
    if artifact_root:
        src = _canonical(artifact_root, "--artifact-root")
        copy_to = (
            _canonical(artifacts_to, "--artifacts-to") if artifacts_to else str((out / "artifacts").resolve())
        )
        if not is_empty(copy_to, s3(copy_to)):
            raise ResourceAlreadyExists(f"Artifact backup location {copy_to!r} is not empty")
        copied = copy_tree(src, copy_to, s3_client=s3(src, copy_to))
        outside = [
            loc
            for loc in store_backup.experiment_locations(db_uri)
            if not loc.startswith("mlflow-artifacts:") and not is_within(canonical_location(loc) or loc, src)
        ]
        if outside:
            logger.warning("artifact locations outside %s were not backed up: %s", src, outside)
        manifest["artifacts"] = {
            "root": artifact_root,
            "copy": "artifacts" if not artifacts_to else copy_to,
            "files": copied.files,
            "bytes": copied.bytes,
            "outside_root": outside,
        }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    logger.info("backed up %s to %s", db_uri, out)
    return manifest


@dataclass(slots=True)
class RestoreReport:
    manifest: dict[str, Any]
    counts: dict[str, int]
    artifacts_copied: int = 0
    relocated: dict[str, int] = field(default_factory=dict)
    verified_files: int = 0


def _read_manifest(src: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((src / MANIFEST).read_text())
    except FileNotFoundError:
        raise ResourceDoesNotExist(f"No {MANIFEST} in {str(src)!r}: not a flowml backup") from None
    if manifest.get("format") != _FORMAT:
        raise InvalidParameterValue(f"Unsupported backup format {manifest.get('format')!r}")
    return manifest


def restore(
    src: str | os.PathLike[str],
    db_uri: str,
    *,
    artifact_root: str | None = None,
    artifacts_from: str | None = None,
    s3_endpoint_url: str | None = None,
    s3_client: Any = None,
    verify: bool = True,
) -> RestoreReport:
    """Restore the backup in ``src`` into the empty database ``db_uri`` and the artifact root
    ``artifact_root`` (default: the original root), then verify it (see the module docstring)."""
    s3 = _S3(s3_endpoint_url, s3_client)
    folder = Path(src)
    manifest = _read_manifest(folder)
    db = manifest["database"]
    dialect = dialect_of(db_uri)
    if dialect != db["dialect"]:
        raise InvalidParameterValue(f"This is a {db['dialect']} backup; it cannot be restored into {dialect}")
    art = manifest.get("artifacts")
    target = _canonical(artifact_root or art["root"], "--artifact-root") if art else None
    if art and target is not None and not is_empty(target, s3(target)):
        raise ResourceAlreadyExists(f"Artifact root {target!r} is not empty; restore into an empty one")

    if dialect == "sqlite":
        store_backup.restore_sqlite(folder / db["file"], sqlite_path(db_uri))
    else:
        store_backup.restore_postgres(folder / db["file"], db_uri)
    if revision(db_uri) != db["revision"]:
        raise FlowmlError(f"Restored revision {revision(db_uri)!r} is not the backup's {db['revision']!r}")
    counts = store_backup.table_counts(db_uri)
    if counts != db["counts"]:
        diff = {t: (n, counts.get(t)) for t, n in db["counts"].items() if counts.get(t) != n}
        raise FlowmlError(f"Restored row counts differ from the backup (expected, found): {diff}")
    report = RestoreReport(manifest, counts)
    if not art or target is None:
        return report

    copy = artifacts_from or art["copy"]
    copy_from = _canonical(
        copy if "://" in copy or os.path.isabs(copy) else str(folder / copy), "backup copy"
    )
    report.artifacts_copied = copy_tree(copy_from, target, s3_client=s3(copy_from, target)).files
    if report.artifacts_copied != art["files"]:
        raise FlowmlError(f"Copied {report.artifacts_copied} artifact files, the backup lists {art['files']}")
    if artifact_root and artifact_root.rstrip("/") != str(art["root"]).rstrip("/"):
        report.relocated = store_backup.relocate_artifact_uris(db_uri, art["root"], artifact_root)
    if verify:
        report.verified_files = _verify_artifacts(db_uri, target, s3)
    return report


def _sha256(location: str, s3: _S3) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    if location.startswith("s3://"):
        parts = urllib.parse.urlsplit(location)
        body = s3(location).get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"]
        chunks = body.iter_chunks(1024 * 1024)
    else:
        chunks = iter_file(location)
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _verify_artifacts(db_uri: str, root: str, s3: _S3) -> int:
    """Size and sha256 of every artifact the store recorded, read back from the restored files."""
    from flowml.artifacts.http import proxy_path

    checked, bad = 0, []
    for run_uri, path, size, sha in store_backup.artifact_files(db_uri):
        base = (
            root.rstrip("/") + "/" + proxy_path(run_uri)
            if run_uri.startswith("mlflow-artifacts:")
            else run_uri
        )
        location = canonical_location(base.rstrip("/") + "/" + path)
        if location is None or not is_within(location, root):
            continue  # outside the restored root (listed as outside_root in the manifest)
        try:
            found = _sha256(location, s3)
        except (OSError, FlowmlError) as exc:
            bad.append(f"{location}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - botocore's ClientError (NoSuchKey) and friends
            bad.append(f"{location}: {type(exc).__name__}")
            continue
        checked += 1
        if found != (size, sha):
            bad.append(f"{location}: size/sha256 {found} != recorded {(size, sha)}")
    if bad:
        raise FlowmlError(f"{len(bad)} restored artifact(s) do not match the database, e.g. {bad[:3]}")
    return checked


def backup_before_upgrade(db_uri: str, backup_to: str | None = None) -> str | None:
    """Before ``flowml db upgrade`` migrates an existing database: a database-only backup into
    ``backup_to`` (a new directory), or for SQLite by default a copy beside the file
    (``<name>.pre-<revision>-<UTC time>.bak``). Returns where it went; None when nothing was at stake
    (no database yet, already at head) or PostgreSQL without ``backup_to``."""
    from flowml.store import HEAD_REVISION

    dialect = dialect_of(db_uri)
    if dialect == "sqlite" and not os.path.isfile(sqlite_path(db_uri)):
        return None
    rev = revision(db_uri)
    if rev is None or rev == HEAD_REVISION:
        return None
    if backup_to:
        backup(db_uri, backup_to)
        return backup_to
    if dialect != "sqlite":
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = Path(f"{sqlite_path(db_uri)}.pre-{rev}-{stamp}.bak")
    store_backup.backup_sqlite(sqlite_path(db_uri), dest)
    return str(dest)
