"""``create_app(settings)``: the FastAPI application behind ``flowml server``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

from fastapi import Depends, FastAPI

from flowml.artifacts import get_artifact_repository
from flowml.client.local import SqlBackend
from flowml.server.auth import Authenticator, make_dependency
from flowml.server.errors import install_error_handlers
from flowml.server.fast_lane import LogBatchLane
from flowml.server.metrics import ServerMetrics
from flowml.server.middleware import GuardMiddleware
from flowml.server.observe import ObservedFastAPI
from flowml.server.routes import (
    artifacts,
    deployments,
    experiments,
    flowml_api,
    flowml_registry,
    logged_models,
    meta,
    registry,
    runs,
    ui_api,
    users,
)
from flowml.server.settings import ServerSettings

__all__ = ["check_store", "create_app"]

logger = logging.getLogger(__name__)

MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """Build the app; the store is opened (and checked) on the first request, not here."""
    settings = settings or ServerSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auth:
            _bootstrap_admin(app.state.backend, settings)
        yield
        await app.state.backend.aclose()
        app.state.backend.close()
        app.state.metrics.close()

    app = ObservedFastAPI(  # request id, /metrics counters and the access log, outermost
        lifespan=lifespan,
        title="flowml",
        version=__import__("flowml").__version__,
        summary="MLflow-compatible tracking, registry and artifact API",
    )
    app.state.settings = settings
    app.state.backend = _backend(settings)
    app.state.metrics = ServerMetrics(app.state.backend)
    app.state.artifacts = get_artifact_repository(
        settings.artifacts_destination, s3_endpoint_url=settings.s3_endpoint_url
    )
    install_error_handlers(app)
    guards: list[Any] = []
    if settings.auth:
        app.state.authenticator = Authenticator(app.state.backend)
        guards = [Depends(make_dependency(app.state.authenticator))]
    for i, prefix in enumerate(MLFLOW_PREFIXES):  # runs/log-batch: matched first (see runs.hot_router)
        app.include_router(runs.hot_router, prefix=prefix, include_in_schema=i == 0, dependencies=guards)
    app.include_router(meta.router, dependencies=guards)
    mlflow_routers = [
        experiments.router,
        runs.router,
        artifacts.router,
        logged_models.router,
        registry.router,
    ]
    if settings.auth:
        mlflow_routers.append(users.router)
    for i, prefix in enumerate(MLFLOW_PREFIXES):
        for router in mlflow_routers:
            app.include_router(router, prefix=prefix, include_in_schema=i == 0, dependencies=guards)
    if settings.serve_artifacts:
        app.include_router(artifacts.proxy_router, prefix="/api/2.0/mlflow-artifacts", dependencies=guards)
    app.include_router(flowml_api.router, prefix="/api/flowml", dependencies=guards)
    app.include_router(flowml_registry.router, prefix="/api/flowml", dependencies=guards)
    app.include_router(flowml_registry.events_router, prefix="/api/flowml", dependencies=guards)
    app.include_router(ui_api.router, prefix="/api/flowml", dependencies=guards)
    app.include_router(deployments.router, prefix="/api/flowml", dependencies=guards)
    from flowml.ui import mount_ui

    mount_ui(app)
    # Outside Starlette's stack, inside ObserveMiddleware: the guards, then (without auth, whose
    # permission check is a FastAPI dependency) the pure-ASGI lane for runs/log-batch.
    front: list[Callable[[Any], Any]] = [partial(GuardMiddleware, allowed_hosts=settings.allowed_hosts)]
    if not settings.auth:
        front.append(partial(LogBatchLane, backend=app.state.backend, prefixes=MLFLOW_PREFIXES))
    app.state.front = front

    return app


def _backend(settings: ServerSettings) -> SqlBackend:
    artifact_root = "mlflow-artifacts:" if settings.serve_artifacts else settings.artifacts_destination
    return SqlBackend(settings.backend_store_uri, artifact_root, busy_timeout_ms=settings.busy_timeout_ms)


def check_store(settings: ServerSettings) -> None:
    """Open the store as the app will (a new database is created at the head revision).

    Raises:
        FlowmlError: ``INVALID_STATE`` for a database at another schema revision (run
            ``flowml db upgrade URI``), or the driver's error when it cannot be reached.
    """
    backend = _backend(settings)
    try:
        _ = backend.db.engine
    finally:
        backend.close()


def _bootstrap_admin(backend: SqlBackend, settings: ServerSettings) -> None:
    from flowml.store import auth as auth_store

    username, password = settings.auth_admin_username, settings.auth_admin_password
    with backend.db.read() as s:
        empty = auth_store.user_count(s) == 0
    if empty and username and password:
        backend.db.write(lambda s: auth_store.create_user(s, username, password, is_admin=True))
        logger.info("created the initial admin user %r", username)
    elif empty:
        logger.warning("auth is on and there are no users: every request will be refused")


def app_from_env() -> FastAPI:
    """uvicorn factory used by ``flowml server`` (settings arrive as JSON in the environment)."""
    import os

    raw = os.environ.get("FLOWML_SERVER_SETTINGS_JSON")
    return create_app(ServerSettings.model_validate_json(raw) if raw else None)
