"""Fluent ``register_model`` (MLflow's ``mlflow.register_model``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowml.entities_registry import ModelVersion
from flowml.exceptions import ResourceAlreadyExists, ResourceDoesNotExist

if TYPE_CHECKING:
    from flowml.client import FlowmlClient

__all__ = ["register_model"]

_RUNS_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)(?:/(?P<path>.*))?$")


def _client() -> FlowmlClient:
    """The client on the tracking store; it refuses a registry URI (``set_registry_uri``) naming
    another store."""
    from flowml.client import FlowmlClient
    from flowml.tracking.fluent import get_registry_uri

    return FlowmlClient(registry_uri=get_registry_uri())


def _ensure_registered_model(client: FlowmlClient, name: str) -> None:
    try:
        client.create_registered_model(name)
    except ResourceAlreadyExists as conflict:
        try:
            client.get_registered_model(name)  # already there: register a new version of it
        except ResourceDoesNotExist:
            raise conflict from None  # the name collides with a differently spelled model


def register_model(
    model_uri: str,
    name: str,
    await_registration_for: int = 300,
    *,
    tags: Mapping[str, Any] | None = None,
) -> ModelVersion:
    """Register the model at ``model_uri`` as a new version of ``name`` (created if missing).

    ``runs:/<run_id>/<path>`` registers ``<run's artifact URI>/<path>`` with ``run_id`` set (as MLflow
    does); other URIs (``models:/...``, a path under the artifact root, ``s3://...``) are passed to
    the store, which validates them. Versions are READY at once, so ``await_registration_for`` is
    accepted for MLflow compatibility only.
    """
    client = _client()
    source, run_id = model_uri, None
    match = _RUNS_URI.match(model_uri)
    if match is not None:
        run_id = match["run_id"]
        artifact_uri = client.get_run(run_id).info.artifact_uri
        path = (match["path"] or "").strip("/")
        source = f"{artifact_uri.rstrip('/')}/{path}" if path else artifact_uri
    _ensure_registered_model(client, name)
    return client.create_model_version(name, source, run_id=run_id, tags=tags)
