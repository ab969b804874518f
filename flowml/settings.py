"""Settings read from the environment (``FLOWML_`` prefix). Never read at import time."""

from __future__ import annotations

import base64
import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["FlowmlSettings", "default_artifact_root", "default_tracking_uri", "get_settings"]


def default_tracking_uri() -> str:
    """The embedded default: a SQLite file in the current working directory."""
    return f"sqlite:///{Path(os.getcwd()) / 'flowml.db'}"


def default_artifact_root() -> str:
    return str(Path(os.getcwd()) / "flowml-artifacts")


class FlowmlSettings(BaseSettings):
    """Everything flowml reads from the environment.

    ``tracking_uri`` and ``artifact_root`` default to files under the *current* directory, resolved
    when the settings object is built, so a process that changes directory keeps its store.
    """

    model_config = SettingsConfigDict(env_prefix="FLOWML_", extra="ignore", populate_by_name=True)

    #: ``FLOWML_TRACKING_URI``; falls back to ``MLFLOW_TRACKING_URI`` so code launched by MLflow
    #: tooling (``mlflow run``) logs where MLflow was pointed.
    tracking_uri: str = Field(
        default_factory=default_tracking_uri,
        validation_alias=AliasChoices("FLOWML_TRACKING_URI", "MLFLOW_TRACKING_URI"),
    )
    #: ``FLOWML_REGISTRY_URI`` (``mlflow.set_registry_uri``): the registry is kept in the tracking store,
    #: so this may only name that store (``register_model`` refuses another).
    registry_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("FLOWML_REGISTRY_URI", "MLFLOW_REGISTRY_URI")
    )
    artifact_root: str = Field(default_factory=default_artifact_root)
    s3_endpoint_url: str | None = None
    #: SQLite busy timeout, in milliseconds.
    sqlite_busy_timeout_ms: int = 30_000
    #: Fluent logging buffer: flush once this many values are pending ...
    log_buffer_size: int = 1000
    #: ... or this many seconds after the first pending value.
    log_flush_interval_s: float = 1.0
    #: Set to false to make every fluent log_metric a synchronous write.
    async_logging: bool = True
    #: Credentials the REST client sends to a server started with ``--auth`` (HTTP Basic, or a Bearer
    #: token, which wins when both are set). MLflow's variable names work too.
    tracking_username: str | None = Field(
        default=None, validation_alias=AliasChoices("FLOWML_TRACKING_USERNAME", "MLFLOW_TRACKING_USERNAME")
    )
    tracking_password: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FLOWML_TRACKING_PASSWORD", "MLFLOW_TRACKING_PASSWORD"),
        repr=False,
    )
    tracking_token: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FLOWML_TRACKING_TOKEN", "MLFLOW_TRACKING_TOKEN"),
        repr=False,
    )

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header for ``tracking_*`` credentials ({} when none are set)."""
        if self.tracking_token:
            return {"Authorization": f"Bearer {self.tracking_token}"}
        if self.tracking_username:
            raw = f"{self.tracking_username}:{self.tracking_password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
        return {}


@lru_cache(maxsize=1)
def get_settings() -> FlowmlSettings:
    """Process-wide settings, built on first use (tests call ``get_settings.cache_clear()``)."""
    return FlowmlSettings()
