"""Copy a whole artifact store: local → local, S3 → S3 (server-side copies), S3 ↔ local.

Used by ``flowml db backup`` / ``restore``. Locations are canonical (see
:func:`flowml.artifacts.sweep.canonical_location`). S3 listings are paginated (1000 keys a page)
and transfers use boto3's managed ``copy`` / ``download_file`` / ``upload_file`` (multipart for
large objects) on a small thread pool. Local files land atomically (temp file + rename); symlinks
are skipped, never followed.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowml.artifacts.base import TEMP_PREFIX
from flowml.exceptions import InvalidParameterValue

__all__ = ["CopyResult", "copy_tree", "is_empty"]

logger = logging.getLogger(__name__)

_WORKERS = 8


@dataclass(slots=True)
class CopyResult:
    files: int = 0
    bytes: int = 0


def _split_s3(location: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(location)
    key = parts.path.strip("/")
    return parts.netloc, f"{key}/" if key else ""


def _list_local(root: Path) -> Iterator[tuple[str, int]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not Path(dirpath, d).is_symlink())
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if path.is_symlink() or name.startswith(TEMP_PREFIX):
                logger.warning("not copying %s (a symlink or an unfinished upload)", path)
                continue
            yield path.relative_to(root).as_posix(), path.stat().st_size


def _list_s3(client: Any, location: str) -> Iterator[tuple[str, int]]:
    bucket, prefix = _split_s3(location)
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 1000}
        if token:
            kwargs["ContinuationToken"] = token
        page = client.list_objects_v2(**kwargs)
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith("/"):  # directory markers carry no data
                yield obj["Key"][len(prefix) :], int(obj["Size"])
        if not page.get("IsTruncated"):
            return
        token = page["NextContinuationToken"]


def is_empty(location: str, s3_client: Any = None) -> bool:
    """No file under ``location`` (a missing local directory is empty)."""
    if location.startswith("s3://"):
        return next(iter(_list_s3(s3_client, location)), None) is None
    root = Path(location)
    return not root.exists() or (root.is_dir() and next(root.iterdir(), None) is None)


def _atomic_local(target: Path, write: Callable[[str], object]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    try:
        write(str(tmp))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def copy_tree(src: str, dst: str, *, s3_client: Any = None) -> CopyResult:
    """Copy every file under ``src`` to the same relative path under ``dst``."""
    src_s3, dst_s3 = src.startswith("s3://"), dst.startswith("s3://")
    for loc, is_s3 in ((src, src_s3), (dst, dst_s3)):
        if not is_s3 and not loc.startswith("/"):
            raise InvalidParameterValue(f"Not a canonical artifact location: {loc!r}")
    if (src_s3 or dst_s3) and s3_client is None:
        raise ValueError("S3 locations need s3_client")
    files = list(_list_s3(s3_client, src) if src_s3 else _list_local(Path(src)))
    result = CopyResult(len(files), sum(size for _, size in files))

    if src_s3 and dst_s3:
        (sb, sp), (db, dp) = _split_s3(src), _split_s3(dst)

        def one(rel: str) -> None:
            s3_client.copy({"Bucket": sb, "Key": sp + rel}, db, dp + rel)
    elif src_s3:
        sb, sp = _split_s3(src)

        def one(rel: str) -> None:
            _atomic_local(Path(dst, rel), lambda tmp: s3_client.download_file(sb, sp + rel, tmp))
    elif dst_s3:
        db, dp = _split_s3(dst)

        def one(rel: str) -> None:
            s3_client.upload_file(str(Path(src, rel)), db, dp + rel)
    else:

        def one(rel: str) -> None:
            _atomic_local(Path(dst, rel), lambda tmp: shutil.copyfile(Path(src, rel), tmp))

    if not (src_s3 or dst_s3):
        Path(dst).mkdir(parents=True, exist_ok=True)
        for rel, _ in files:
            one(rel)
        return result
    with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="flowml-copy") as pool:
        for future in [pool.submit(one, rel) for rel, _ in files]:
            future.result()  # the first failure is raised
    return result
