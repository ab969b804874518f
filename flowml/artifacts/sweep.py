"""Delete an artifact tree except the subtrees something still uses (``flowml gc``'s file side).

Locations are *canonical* strings: a local directory as its absolute real path (``/data/a/1/r/artifacts``)
or ``s3://bucket/key`` without a trailing slash. ``keep`` holds paths relative to the location whose
whole subtree stays (``""`` keeps everything).

* Local: entries outside ``keep`` are unlinked / removed with ``rmtree``; symlinks are removed, never
  followed. A location left empty is removed, and so is its parent when it was a run's
  ``<run_id>/artifacts`` directory and nothing else is in it.
* S3: ``list_objects_v2`` pages (1000 keys, ``ContinuationToken``) are filtered against ``keep`` and
  the keys to delete go out in ``delete_objects`` calls of at most 1000 keys. Deleting keys that were
  already listed never disturbs the continuation token (it resumes after the last key listed).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import urllib.parse
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowml.artifacts.local import local_path_from_uri
from flowml.exceptions import FlowmlError, InvalidParameterValue

__all__ = ["S3_BATCH", "SweepResult", "canonical_location", "is_within", "sweep"]

logger = logging.getLogger(__name__)

#: S3's maximum keys per ListObjectsV2 page and per DeleteObjects request.
S3_BATCH = 1000


@dataclass(slots=True)
class SweepResult:
    """What was (or, in a dry run, would be) deleted, and what stayed."""

    files: int = 0
    bytes: int = 0
    kept_files: int = 0
    list_calls: int = 0
    delete_calls: int = 0


def _real_path(path: str, cache: dict[str, str]) -> str:
    """``os.path.realpath`` of a normalised absolute path, one ``lstat`` per component not yet in
    ``cache`` (a plan resolves 100k run roots that share all but their last two components)."""
    found = cache.get(path)
    if found is not None:
        return found
    head, tail = os.path.split(path)
    if not tail:
        result = path
    else:
        full = _real_path(head, cache).rstrip("/") + "/" + tail
        try:
            is_link = stat.S_ISLNK(os.lstat(full).st_mode)
        except OSError:  # missing (already deleted) or unreadable: nothing to resolve
            is_link = False
        result = os.path.realpath(full) if is_link else full
    cache[path] = result
    return result


def canonical_location(uri: str, cache: dict[str, str] | None = None) -> str | None:
    """The canonical form of a local path / ``file:`` / ``s3://`` URI; None for anything else.

    Pass the same ``cache`` dict to resolve many local paths quickly (symlinks are still followed)."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme == "s3":
        parts = urllib.parse.urlsplit(uri)
        key = parts.path.strip("/")
        return f"s3://{parts.netloc}/{key}" if key else f"s3://{parts.netloc}"
    if scheme in ("", "file"):
        try:
            path = local_path_from_uri(uri)
        except InvalidParameterValue:
            return None
        if not path.startswith("/"):
            return None
        return os.path.realpath(path) if cache is None else _real_path(os.path.normpath(path), cache)
    return None


def is_within(path: str, root: str) -> bool:
    """``path`` is ``root`` or below it (both canonical)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def _kept(rel: str, keep: Collection[str]) -> bool:
    return any(k == "" or rel == k or rel.startswith(k + "/") for k in keep)


def _above_kept(rel: str, keep: Collection[str]) -> bool:
    return any(k.startswith(rel + "/") for k in keep)


def sweep(location: str, keep: Collection[str], *, dry_run: bool, s3_client: Any = None) -> SweepResult:
    """Delete everything under ``location`` except the ``keep`` subtrees (count only, when ``dry_run``)."""
    if location.startswith("s3://"):
        if s3_client is None:
            raise ValueError("an S3 location needs s3_client")
        return _sweep_s3(location, set(keep), dry_run, s3_client)
    if not location.startswith("/") or location == "/":
        raise InvalidParameterValue(f"Refusing to sweep {location!r}: not a canonical artifact location")
    return _sweep_local(Path(location), set(keep), dry_run)


# -- local ----------------------------------------------------------------------------------------
def _tree_size(path: Path) -> tuple[int, int]:
    if path.is_symlink() or not path.is_dir():
        return 1, path.lstat().st_size
    files = size = 0
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return files, size


def _sweep_local(root: Path, keep: set[str], dry_run: bool) -> SweepResult:
    result = SweepResult()
    if not root.exists() and not root.is_symlink():
        return result
    if "" in keep:
        result.kept_files = _tree_size(root)[0]
        return result
    if root.is_symlink() or not root.is_dir():
        result.files, result.bytes = _tree_size(root)
        if not dry_run:
            root.unlink()
        return result
    _sweep_dir(root, "", keep, dry_run, result)
    if not dry_run:
        _remove_if_empty(root)
        if root.name == "artifacts":  # <experiment>/<run_id>/artifacts: the run's own directory
            _remove_if_empty(root.parent)
    return result


def _sweep_dir(directory: Path, rel: str, keep: set[str], dry_run: bool, result: SweepResult) -> None:
    with os.scandir(directory) as entries:
        listed = sorted(entries, key=lambda e: e.name)
    for entry in listed:
        child_rel = f"{rel}/{entry.name}" if rel else entry.name
        path = Path(entry.path)
        is_dir = entry.is_dir(follow_symlinks=False)
        if _kept(child_rel, keep):
            result.kept_files += _tree_size(path)[0]
            continue
        if is_dir and _above_kept(child_rel, keep):
            _sweep_dir(path, child_rel, keep, dry_run, result)
            continue
        files, size = _tree_size(path)
        result.files += files
        result.bytes += size
        if dry_run:
            continue
        if is_dir:
            shutil.rmtree(path)
        else:
            path.unlink()


def _remove_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (kept files), or already gone
        path.rmdir()


# -- S3 -------------------------------------------------------------------------------------------
def _sweep_s3(location: str, keep: set[str], dry_run: bool, client: Any) -> SweepResult:
    from flowml.artifacts.s3 import _s3_errors

    parts = urllib.parse.urlsplit(location)
    bucket, key = parts.netloc, parts.path.strip("/")
    if not key:
        raise InvalidParameterValue(f"Refusing to sweep a whole bucket ({location!r})")
    prefix = key + "/"
    result = SweepResult()
    pending: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": S3_BATCH}
        if token:
            kwargs["ContinuationToken"] = token
        with _s3_errors(f"list s3://{bucket}/{prefix}"):
            page = client.list_objects_v2(**kwargs)
        result.list_calls += 1
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix) :]
            if _kept(rel, keep):
                result.kept_files += 1
                continue
            pending.append(obj["Key"])
            result.files += 1
            result.bytes += int(obj.get("Size", 0))
        while len(pending) >= S3_BATCH:
            batch, pending = pending[:S3_BATCH], pending[S3_BATCH:]
            _delete_batch(client, bucket, batch, dry_run, result)
        if not page.get("IsTruncated"):
            break
        token = page["NextContinuationToken"]
    if pending:
        _delete_batch(client, bucket, pending, dry_run, result)
    return result


def _delete_batch(client: Any, bucket: str, keys: list[str], dry_run: bool, result: SweepResult) -> None:
    from flowml.artifacts.s3 import _s3_errors

    if dry_run:
        return
    with _s3_errors(f"delete from s3://{bucket}"):
        response = client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
        )
    result.delete_calls += 1
    errors = response.get("Errors", [])
    if errors:
        first = errors[0]
        raise FlowmlError(
            f"S3 delete failed for {len(errors)} of {len(keys)} key(s) in s3://{bucket}, e.g. "
            f"{first.get('Key')!r}: {first.get('Code')} {first.get('Message', '')}".strip()
        )
    logger.debug("deleted %d key(s) from s3://%s", len(keys), bucket)
