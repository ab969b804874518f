"""Health, version, server-info and Prometheus metrics endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

import flowml

router = APIRouter(tags=["meta"])


@router.get("/health", response_class=PlainTextResponse)
def health() -> str:
    return "OK"


@router.get("/version", response_class=PlainTextResponse)
def version() -> str:
    return flowml.__version__


@router.get("/api/3.0/mlflow/server-info")
def server_info() -> dict[str, Any]:
    return {"store_type": "SqlStore", "workspaces_enabled": False}


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus exposition (``flowml.server.metrics``); with ``--auth`` admins only, unless
    ``metrics_public`` is set."""
    body, content_type = request.app.state.metrics.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)
