"""Run artifact listing (REST 2.0) and the artifact proxy (``/api/2.0/mlflow-artifacts``).

Every path goes through :mod:`flowml.artifacts`' path checks before storage is touched, so
nothing outside the artifact root can be read, written or deleted; a run's artifacts are listed
only when they live in the server's own store (:func:`run_artifacts_in_store`), never wherever
its experiment's ``artifact_location`` points. Downloads are streamed as
attachments with ``X-Content-Type-Options: nosniff``; uploads are streamed to a spooled temp file.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from flowml.artifacts import (
    ArtifactRepository,
    LocalArtifactRepository,
    S3ArtifactRepository,
    normalize_artifact_path,
)
from flowml.artifacts.base import is_within
from flowml.artifacts.http import proxy_path
from flowml.artifacts.local import is_local_uri, local_path_from_uri
from flowml.artifacts.s3 import parse_s3_uri
from flowml.exceptions import InvalidParameterValue
from flowml.server.deps import ArtifactsDep, BackendDep
from flowml.server.schemas import require_run_id
from flowml.server.wire import file_info_json

router = APIRouter(tags=["artifacts"])
proxy_router = APIRouter(tags=["artifact proxy"])

PROXY_SCHEME = "mlflow-artifacts:"
_SPOOL_BYTES = 8 * 1024 * 1024


def attachment_headers(filename: str) -> dict[str, str]:
    """``Content-Disposition: attachment`` for ``filename`` (an ASCII fallback plus RFC 6266's UTF-8
    ``filename*``, so any name is safe in a header) and ``nosniff``."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename) or "download"
    quoted = urllib.parse.quote(filename, safe="")
    return {
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quoted}",
        "X-Content-Type-Options": "nosniff",
    }


def run_artifacts_in_store(artifact_uri: str, store: ArtifactRepository) -> str:
    """The path of a run's artifact directory inside the server's artifact store ``store``.

    Raises :class:`InvalidParameterValue` when the run's artifacts are stored anywhere else.
    """
    if artifact_uri.startswith(PROXY_SCHEME):
        return proxy_path(artifact_uri)
    rel: str | None = None
    if isinstance(store, S3ArtifactRepository) and artifact_uri.startswith("s3://"):
        bucket, prefix = parse_s3_uri(artifact_uri)
        if bucket == store.bucket and (not store.prefix or prefix == store.prefix):
            rel = "" if prefix == store.prefix else prefix
        elif bucket == store.bucket and prefix.startswith(store.prefix + "/"):
            rel = prefix[len(store.prefix) + 1 :]
    elif isinstance(store, LocalArtifactRepository) and is_local_uri(artifact_uri):
        root = os.path.realpath(store.root_path)
        target = os.path.realpath(local_path_from_uri(artifact_uri))
        if is_within(root, target):
            rel = Path(target).relative_to(root).as_posix() if target != root else ""
    if rel is None:
        raise InvalidParameterValue(
            f"This run's artifacts are stored at {artifact_uri!r}, outside this server's artifact store: "
            "the server only serves artifacts it stores. Download them with the client instead."
        )
    return normalize_artifact_path(rel)


def run_path_in_store(artifact_uri: str, store: ArtifactRepository, rel: str) -> tuple[str, str]:
    """The run's artifact root in the server's store and ``rel`` (already normalised) below it."""
    base = run_artifacts_in_store(artifact_uri, store)
    return base, posixpath.join(base, rel) if base and rel else base or rel


@router.get("/artifacts/list")
def list_run_artifacts(
    backend: BackendDep,
    artifacts: ArtifactsDep,
    run_id: str | None = None,
    run_uuid: str | None = None,
    path: str | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    run_info = backend.get_run_info(require_run_id(run_id, run_uuid))
    base, full = run_path_in_store(run_info.artifact_uri, artifacts, normalize_artifact_path(path))
    files = artifacts.list_artifacts(full or None)
    out = []
    for info in files:
        run_relative = info.path[len(base) + 1 :] if base else info.path
        out.append(file_info_json(type(info)(run_relative, info.is_dir, info.file_size)))
    return {"root_uri": run_info.artifact_uri, "files": out}


@proxy_router.get("/artifacts")
def proxy_list(artifacts: ArtifactsDep, path: str | None = None) -> dict[str, Any]:
    rel = normalize_artifact_path(path)
    files = artifacts.list_artifacts(rel or None)
    return {
        "files": [file_info_json(type(f)(posixpath.basename(f.path), f.is_dir, f.file_size)) for f in files]
    }


@proxy_router.get("/artifacts/{artifact_path:path}")
def proxy_download(artifact_path: str, artifacts: ArtifactsDep) -> StreamingResponse:
    rel = normalize_artifact_path(artifact_path, allow_root=False)
    stream: Iterator[bytes] = artifacts.open_stream(rel)
    return StreamingResponse(
        stream, media_type="application/octet-stream", headers=attachment_headers(posixpath.basename(rel))
    )


@proxy_router.put("/artifacts/{artifact_path:path}")
async def proxy_upload(artifact_path: str, request: Request, artifacts: ArtifactsDep) -> dict[str, Any]:
    rel = normalize_artifact_path(artifact_path, allow_root=False)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)

        def chunks() -> Iterator[bytes]:
            while block := spool.read(1024 * 1024):
                yield block

        await run_in_threadpool(artifacts.write_stream, rel, chunks())
    return {}


@proxy_router.delete("/artifacts/{artifact_path:path}")
def proxy_delete(artifact_path: str, artifacts: ArtifactsDep) -> dict[str, Any]:
    artifacts.delete_artifacts(normalize_artifact_path(artifact_path, allow_root=False))
    return {}
