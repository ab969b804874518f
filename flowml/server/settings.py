"""Server settings (``FLOWML_SERVER_`` environment prefix, or ``flowml server`` options)."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from flowml.settings import default_artifact_root, default_tracking_uri

__all__ = ["ServerSettings"]


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLOWML_SERVER_", extra="ignore", populate_by_name=True)

    backend_store_uri: str = Field(default_factory=default_tracking_uri)
    #: Where proxied artifacts are stored (local directory or s3://bucket/prefix).
    artifacts_destination: str = Field(default_factory=default_artifact_root)
    #: Proxy artifacts through /api/2.0/mlflow-artifacts (new experiments get mlflow-artifacts:/ URIs).
    serve_artifacts: bool = True
    #: ``FLOWML_SERVER_S3_ENDPOINT_URL``, else ``FLOWML_S3_ENDPOINT_URL`` (the clients' setting: one
    #: variable for a whole deployment pointing at MinIO; without it the server would talk to AWS).
    s3_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FLOWML_SERVER_S3_ENDPOINT_URL", "FLOWML_S3_ENDPOINT_URL"),
    )
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
    #: Log lines as ``text`` or ``json`` (one object per line, with ``request_id``); uvicorn's too.
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    #: One INFO line per request on ``flowml.server.access`` (method, route, path, status, duration).
    access_log: bool = True
    #: With ``auth``: anyone may scrape ``/metrics`` (otherwise admins only, e.g. an admin's token).
    metrics_public: bool = False
    #: On SIGTERM, seconds to let in-flight requests finish before they are cancelled (keep it
    #: below the orchestrator's kill timeout: Kubernetes waits 30 s by default).
    timeout_graceful_shutdown: int = 25
