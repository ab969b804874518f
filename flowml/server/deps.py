"""Request-scoped dependencies: the store backend and the artifact repository of the server."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from flowml.artifacts import ArtifactRepository
from flowml.client.local import SqlBackend
from flowml.server.settings import ServerSettings

__all__ = ["ArtifactsDep", "BackendDep", "SettingsDep"]


def get_backend(request: Request) -> SqlBackend:
    backend: SqlBackend = request.app.state.backend
    return backend


def get_settings(request: Request) -> ServerSettings:
    settings: ServerSettings = request.app.state.settings
    return settings


def get_artifacts(request: Request) -> ArtifactRepository:
    repo: ArtifactRepository = request.app.state.artifacts
    return repo


BackendDep = Annotated[SqlBackend, Depends(get_backend)]
SettingsDep = Annotated[ServerSettings, Depends(get_settings)]
ArtifactsDep = Annotated[ArtifactRepository, Depends(get_artifacts)]
