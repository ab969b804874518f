"""Server settings (``FLOWML_SERVER_`` environment prefix, or ``flowml server`` options)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from flowml.settings import default_artifact_root, default_tracking_uri

__all__ = ["ServerSettings"]


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWML_SERVER_", extra="ignore")

    backend_store_uri: str = Field(default_factory=default_tracking_uri)
    #: Where proxied artifacts are stored (local directory or s3://bucket/prefix).
    artifacts_destination: str = Field(default_factory=default_artifact_root)
    #: Proxy artifacts through /api/2.0/mlflow-artifacts (new experiments get mlflow-artifacts:/ URIs).
    serve_artifacts: bool = True
    s3_endpoint_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    #: Accepted Host header values (DNS-rebinding guard); "*" accepts any.
    allowed_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "[::1]"])
    busy_timeout_ms: int = 30_000
    #: Require credentials (Basic or Bearer) and per-experiment / per-model permissions.
    auth: bool = False
    #: With ``auth``: an admin created at start-up when the user table is empty. With no users and
    #: no admin configured every request is refused (default deny).
    auth_admin_username: str | None = None
    auth_admin_password: str | None = None
