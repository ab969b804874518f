"""flowml's web UI: a static single-page app (vanilla ES modules + CSS, no CDN, no build step).

``mount_ui(app)`` serves ``/`` (the page shell) and ``/static/...`` (the bundle). The UI only talks to
the public REST API (MLflow's routes plus ``/api/flowml/...``), so it works against any flowml server.
These routes are plain Starlette routes, public by design (the shell must load to show the login
form); every API call the page makes goes through the server's auth.
"""

from __future__ import annotations

import hashlib
import mimetypes
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from fastapi import FastAPI

    from flowml.server.settings import ServerSettings

__all__ = ["STATIC_DIR", "build_app", "mount_ui"]

STATIC_DIR = Path(__file__).parent / "static"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}
_SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'"
)


@lru_cache(maxsize=256)
def _load(path: Path, mtime_ns: int) -> tuple[bytes, str]:
    data = path.read_bytes()
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def _file_response(request: Request, path: Path, cache_control: str) -> Response:
    data, etag = _load(path, path.stat().st_mtime_ns)
    media = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {"ETag": etag, "Cache-Control": cache_control, **_SECURITY}
    if path.suffix == ".html":
        headers["Content-Security-Policy"] = _CSP
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media, headers=headers)


def _not_found() -> Response:
    return Response(
        b'{"error_code":"ENDPOINT_NOT_FOUND","message":"Not found"}', 404, media_type="application/json"
    )


async def _index(request: Request) -> Response:
    # Revalidated on every load (cheap 304s), so an upgraded server is picked up at once.
    return _file_response(request, STATIC_DIR / "index.html", "no-cache")


async def _static(request: Request) -> Response:
    rel = str(request.path_params["path"])
    root = STATIC_DIR.resolve()
    target = (root / rel).resolve()
    if not target.is_relative_to(root) or not target.is_file() or rel.startswith("."):
        return _not_found()
    return _file_response(request, target, "no-cache")


def mount_ui(app: FastAPI) -> None:
    """Serve the UI at ``/`` and its files at ``/static/...`` (idempotent)."""
    if getattr(app.state, "flowml_ui", False):
        return
    app.state.flowml_ui = True
    app.add_route("/", _index, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_route("/static/{path:path}", _static, methods=["GET", "HEAD"], include_in_schema=False)


def build_app(settings: ServerSettings | None = None) -> FastAPI:
    """The server app (``create_app`` mounts the UI and its endpoints); used by ``flowml ui`` and tests."""
    from flowml.server import create_app

    return create_app(settings)
