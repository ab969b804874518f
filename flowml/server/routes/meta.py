"""Health, version and server-info endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

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
