"""flowml's FastAPI server: MLflow's REST API 2.0, the artifact proxy and flowml's own API."""

from flowml.server.app import create_app
from flowml.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
