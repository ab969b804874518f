"""flowml's FastAPI server: MLflow's REST API 2.0, the artifact proxy and flowml's own API.

Names resolve lazily: importing a light submodule (``flowml.server.logs``, which every ``--workers``
child imports while uvicorn is already waiting for its health-check answer) must not import the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowml.server.app import create_app
    from flowml.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from flowml.server.app import create_app

        return create_app
    if name == "ServerSettings":
        from flowml.server.settings import ServerSettings

        return ServerSettings
    raise AttributeError(f"module 'flowml.server' has no attribute {name!r}")
