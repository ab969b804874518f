"""Fluent ``register_model`` (MLflow's ``mlflow.register_model``)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowml.entities_registry import ModelVersion
from flowml.exceptions import ResourceAlreadyExists, ResourceDoesNotExist

if TYPE_CHECKING:
    from flowml.client import FlowmlClient

__all__ = ["register_model"]

logger = logging.getLogger(__name__)

_MODEL_VERSIONS_TAG = "mlflow.modelVersions"
MLMODEL_FILE = "MLmodel"

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


def _run_has_model_files(client: FlowmlClient, run_id: str, path: str) -> bool:
    """Whether the run's own artifacts hold an ``MLmodel`` at ``path`` (not its logged models':
    ``client.list_artifacts`` would list those too)."""
    try:
        files = client._repo(run_id).list_artifacts(path)
    except ResourceDoesNotExist:
        return False
    return any(f.path.rstrip("/").rsplit("/", 1)[-1] == MLMODEL_FILE for f in files)


def _run_logged_model_id(client: FlowmlClient, run_id: str, name: str) -> str | None:
    """MLflow 3: ``runs:/<run_id>/<name>`` without files there names the run's logged model
    ``<name>`` (the one logged at the largest step when there are several); None when it has none."""
    run = client.get_run(run_id)
    found = [
        m
        for m in client._run_logged_models(run.info.experiment_id, run_id, name)
        if m.source_run_id == run_id
    ]
    if not found:
        return None
    steps = dict(run.links.model_outputs)
    return max(found, key=lambda m: steps.get(m.model_id, 0)).model_id


def _link_version(client: FlowmlClient, model_id: str, version: ModelVersion) -> None:
    """Append the version to the logged model's ``mlflow.modelVersions`` tag (as MLflow 3 does)."""
    try:
        model = client.get_logged_model(model_id)
    except ResourceDoesNotExist:
        logger.warning("Unable to update logged model tags for model ID %r: it does not exist", model_id)
        return
    entries = json.loads(model.tags.get(_MODEL_VERSIONS_TAG) or "[]")
    entries.append({"name": version.name, "version": int(version.version)})
    client.set_logged_model_tags(model_id, {_MODEL_VERSIONS_TAG: json.dumps(entries)})


def register_model(
    model_uri: str,
    name: str,
    await_registration_for: int = 300,
    *,
    tags: Mapping[str, Any] | None = None,
) -> ModelVersion:
    """Register the model at ``model_uri`` as a new version of ``name`` (created if missing).

    ``runs:/<run_id>/<path>`` registers the run's logged model ``<path>`` as ``models:/<model_id>`` when
    the run holds no model files at ``<path>`` (MLflow 3), else ``<run's artifact URI>/<path>`` with
    ``run_id`` set (models logged before MLflow 3; unlike MLflow 3, a path with neither is registered
    too, as before); ``models:/<model_id>`` registers that logged model (its version gets the
    model's run, and the model's ``mlflow.modelVersions`` tag lists the version). Other URIs
    (``models:/name/1``, a path under the artifact root, ``s3://...``) are passed to the store, which
    validates them. Versions are READY at once, so ``await_registration_for`` is accepted for MLflow
    compatibility only.
    """
    from flowml.models.uri import logged_model_id

    client = _client()
    source, run_id = model_uri, None
    model_id = logged_model_id(model_uri)
    match = _RUNS_URI.match(model_uri)
    if match is not None:
        run_id = match["run_id"]
        path = (match["path"] or "").strip("/")
        if path and not _run_has_model_files(client, run_id, path):
            model_id = _run_logged_model_id(client, run_id, path)
        if model_id is None:
            artifact_uri = client.get_run(run_id).info.artifact_uri
            source = f"{artifact_uri.rstrip('/')}/{path}" if path else artifact_uri
        else:
            source = f"models:/{model_id}"
            logger.warning(
                "Run with id %s has no artifacts at artifact path %r, registering model based on %s instead",
                run_id,
                path,
                source,
            )
    _ensure_registered_model(client, name)
    version = client.create_model_version(name, source, run_id=run_id, tags=tags)
    if model_id is not None:
        _link_version(client, model_id, version)
    return version
