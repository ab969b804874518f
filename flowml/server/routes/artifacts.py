"""Run artifact listing (REST 2.0) and the artifact proxy (``/api/2.0/mlflow-artifacts``).

Every path goes through :mod:`flowml.artifacts`' path checks before storage is touched, so
nothing outside the artifact root can be read, written or deleted. Downloads are streamed as
attachments with ``X-Content-Type-Options: nosniff``; uploads are streamed to a spooled temp file.
"""

from __future__ import annotations

import posixpath
import tempfile
import urllib.parse
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from flowml.artifacts import ArtifactRepository, get_artifact_repository, normalize_artifact_path
from flowml.artifacts.http import proxy_path
from flowml.server.deps import ArtifactsDep, BackendDep, SettingsDep
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


def _run_repo(artifact_uri: str, proxy: ArtifactRepository, settings: Any) -> tuple[ArtifactRepository, str]:
    """The repository that holds a run's artifacts and the run root's path inside it."""
    if artifact_uri.startswith(PROXY_SCHEME):
        return proxy, proxy_path(artifact_uri)
    return get_artifact_repository(artifact_uri, s3_endpoint_url=settings.s3_endpoint_url), ""


@router.get("/artifacts/list")
def list_run_artifacts(
    backend: BackendDep,
    artifacts: ArtifactsDep,
    settings: SettingsDep,
    run_id: str | None = None,
    run_uuid: str | None = None,
    path: str | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    run = backend.get_run(require_run_id(run_id, run_uuid))
    repo, base = _run_repo(run.info.artifact_uri, artifacts, settings)
    rel = normalize_artifact_path(path)
    files = repo.list_artifacts(posixpath.join(base, rel) if base else rel or None)
    out = []
    for info in files:
        run_relative = info.path[len(base) + 1 :] if base else info.path
        out.append(file_info_json(type(info)(run_relative, info.is_dir, info.file_size)))
    return {"root_uri": run.info.artifact_uri, "files": out}


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
