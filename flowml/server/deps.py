"""Request-scoped dependencies: the store backend and the artifact repository of the server.

``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a hop per request
for what is an attribute read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from flowml.artifacts import ArtifactRepository
from flowml.client.local import SqlBackend
from flowml.server.settings import ServerSettings

__all__ = ["ArtifactsDep", "BackendDep", "SettingsDep"]


async def get_backend(request: Request) -> SqlBackend:
    backend: SqlBackend = request.app.state.backend
    return backend


async def get_settings(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


async def get_artifacts(request: Request) -> ArtifactRepository:
    repo: ArtifactRepository = request.app.state.artifacts
    return repo


BackendDep = Annotated[SqlBackend, Depends(get_backend)]
SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
ArtifactsDep = Annotated[ArtifactRepository, Depends(get_artifacts)]
