"""MLflow 3's fluent logged-model API (``mlflow.get_logged_model``, ``mlflow.set_active_model``...).

State, as in :mod:`flowml.tracking.fluent`, lives in :class:`contextvars.ContextVar` (per thread and
asyncio task): the last logged model and the active model. The active model defaults to
``MLFLOW_ACTIVE_MODEL_ID`` (then MLflow's legacy ``_MLFLOW_ACTIVE_MODEL_ID``) from the environment.
"""

from __future__ import annotations

import contextvars
import getpass
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

from flowml.client import FlowmlClient
from flowml.entities import LoggedModel, LoggedModelStatus
from flowml.exceptions import InvalidParameterValue

__all__ = [
    "ActiveModel",
    "clear_active_model",
    "create_external_model",
    "delete_logged_model_tag",
    "finalize_logged_model",
    "get_active_model_id",
    "get_logged_model",
    "initialize_logged_model",
    "last_logged_model",
    "log_model_params",
    "search_logged_models",
    "set_active_model",
    "set_logged_model_tags",
]

logger = logging.getLogger(__name__)

_ACTIVE_MODEL_ENVS = ("MLFLOW_ACTIVE_MODEL_ID", "_MLFLOW_ACTIVE_MODEL_ID")
_encode = getattr(os.environ, "encodekey", None)
_ENV_KEYS: tuple[Any, ...] = tuple(_encode(e) for e in _ACTIVE_MODEL_ENVS) if callable(_encode) else ()
_UNSET = ""  # the active model was not set in this context: read the environment

_last_model_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "flowml_last_model_id", default=None
)
_active_model_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "flowml_active_model_id", default=_UNSET
)

#: The tag MLflow sets on external models (their files are not stored by the tracking server).
MODEL_IS_EXTERNAL_TAG = "mlflow.model.isExternal"


def _set_last_logged_model_id(model_id: str) -> None:
    _last_model_id.set(model_id)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def context_tags(tags: Mapping[str, Any] | None = None) -> dict[str, str]:
    """MLflow's context tags (user, source name and type) under the caller's ``tags``."""
    from flowml.tracking.fluent import _default_tags

    return {"mlflow.user": _user(), **_default_tags(), **{k: str(v) for k, v in (tags or {}).items()}}


def _create(
    name: str | None,
    source_run_id: str | None,
    tags: Mapping[str, Any] | None,
    params: Mapping[str, Any] | None,
    model_type: str | None,
    experiment_id: str | None,
) -> tuple[FlowmlClient, LoggedModel]:
    """MLflow's ``_create_logged_model``: the active run is the default source and experiment."""
    from flowml.tracking import fluent

    active = fluent.active_run()
    client = active.client if active is not None else FlowmlClient()
    if source_run_id is None and active is not None:
        source_run_id = active.run_id
    if experiment_id is None:
        experiment_id = (
            active.info.experiment_id if active is not None else fluent._active_experiment_id(client)
        )
    model = client.create_logged_model(
        str(experiment_id), name, source_run_id, context_tags(tags), params, model_type
    )
    return client, model


def initialize_logged_model(
    name: str | None = None,
    source_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    model_type: str | None = None,
    experiment_id: str | None = None,
) -> LoggedModel:
    """A new PENDING logged model without files (add them, then :func:`finalize_logged_model`)."""
    _, model = _create(name, source_run_id, tags, params, model_type, experiment_id)
    _last_model_id.set(model.model_id)
    return model


def finalize_logged_model(model_id: str, status: str | LoggedModelStatus) -> LoggedModel:
    return FlowmlClient().finalize_logged_model(model_id, status)


def create_external_model(
    name: str | None = None,
    source_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    model_type: str | None = None,
    experiment_id: str | None = None,
) -> LoggedModel:
    """A READY logged model whose files live outside flowml: only an ``MLmodel`` stub is stored
    (so it can be registered), tagged ``mlflow.model.isExternal``."""
    from flowml.models.mlmodel import MLMODEL_FILE, Model

    all_tags = {**dict(tags or {}), MODEL_IS_EXTERNAL_TAG: "true"}
    client, model = _create(name, source_run_id, all_tags, params, model_type, experiment_id)
    stub = Model(
        artifact_path=model.artifact_location,
        run_id=model.source_run_id,
        model_uuid=model.model_id,
        metadata={MODEL_IS_EXTERNAL_TAG: True},
        model_id=model.model_id,
    )
    with tempfile.TemporaryDirectory(prefix="flowml-external-model-") as tmp:
        stub.save(os.path.join(tmp, MLMODEL_FILE))
        client.log_model_artifacts(model.model_id, tmp)
    model = client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    _last_model_id.set(model.model_id)
    return model


def get_logged_model(model_id: str) -> LoggedModel:
    return FlowmlClient().get_logged_model(model_id)


def last_logged_model() -> LoggedModel | None:
    """The logged model most recently logged (or initialized) in this context, else None."""
    model_id = _last_model_id.get()
    return get_logged_model(model_id) if model_id else None


def set_logged_model_tags(model_id: str, tags: Mapping[str, Any]) -> None:
    FlowmlClient().set_logged_model_tags(model_id, tags)


def delete_logged_model_tag(model_id: str, key: str) -> None:
    FlowmlClient().delete_logged_model_tag(model_id, key)


def log_model_params(params: Mapping[str, Any], model_id: str | None = None) -> None:
    """Params of ``model_id`` (default: the active model)."""
    FlowmlClient().log_model_params(model_id or get_active_model_id() or "", params)


def _as_row(model: LoggedModel) -> dict[str, Any]:
    return {
        "artifact_location": model.artifact_location,
        "creation_timestamp": model.creation_timestamp,
        "experiment_id": model.experiment_id,
        "last_updated_timestamp": model.last_updated_timestamp,
        "metrics": list(model.metrics),
        "model_id": model.model_id,
        "model_type": model.model_type,
        "name": model.name,
        "params": dict(model.params),
        "source_run_id": model.source_run_id,
        "status": LoggedModelStatus.parse(model.status),
        "status_message": model.status_message,
        "tags": dict(model.tags),
    }


def search_logged_models(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str | None = None,
    datasets: Sequence[Mapping[str, Any]] | None = None,
    max_results: int | None = None,
    order_by: Sequence[Mapping[str, Any]] | None = None,
    output_format: Literal["pandas", "list"] = "pandas",
) -> Any:
    """Logged models of ``experiment_ids`` (default: the active experiment), every page, as a pandas
    DataFrame (MLflow's columns) or a list."""
    from flowml.tracking import fluent

    if output_format not in ("pandas", "list"):
        raise InvalidParameterValue(
            f"Unsupported output format: {output_format!r}. Supported string values are 'pandas' or 'list'"
        )
    client = FlowmlClient()
    ids = list(experiment_ids or [fluent._active_experiment_id(client)])
    models: list[LoggedModel] = []
    token: str | None = None
    while True:
        page = client.search_logged_models(ids, filter_string, datasets, max_results, order_by, token)
        models.extend(page)
        token = page.token
        if not token or (max_results is not None and len(models) >= max_results):
            break
    if max_results is not None:
        models = models[:max_results]
    if output_format == "list":
        return models
    import pandas as pd

    return pd.DataFrame([_as_row(m) for m in models])


# -- the active model --------------------------------------------------------------------------
def get_active_model_id() -> str | None:
    """The active model of this context: set with :func:`set_active_model`, else the environment's."""
    model_id = _active_model_id.get()
    if model_id == _UNSET:
        return _environment_model_id()
    return model_id


def _environment_model_id() -> str | None:
    """``MLFLOW_ACTIVE_MODEL_ID`` (or MLflow's private twin), read at each call as MLflow does.

    Every fluent ``log_metric`` asks (its point may belong to the active model), so this reads
    ``os.environ``'s own dict (what ``os.environ[...]`` reads and writes): one lookup per name instead
    of the mapping's key encoding, ~1 µs each, which would double the cost of a buffered point.
    """
    environ: Any = os.environ
    data = getattr(environ, "_data", None)
    if isinstance(data, dict) and _ENV_KEYS:
        for key in _ENV_KEYS:
            raw = data.get(key)
            if raw:
                return str(environ.decodevalue(raw))
        return None
    return next((os.environ[e] for e in _ACTIVE_MODEL_ENVS if os.environ.get(e)), None)


class ActiveModel:
    """The model :func:`set_active_model` made active: its attributes are the ``LoggedModel``'s, and
    as a context manager it restores the previous active model on exit."""

    def __init__(self, model: LoggedModel, previous: str | None) -> None:
        self.logged_model = model
        self._previous = previous

    def __getattr__(self, name: str) -> Any:
        return getattr(self.logged_model, name)

    def __enter__(self) -> ActiveModel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _active_model_id.set(self._previous)

    def __repr__(self) -> str:
        return f"<ActiveModel: model_id={self.logged_model.model_id}, name={self.logged_model.name}>"


def set_active_model(*, name: str | None = None, model_id: str | None = None) -> ActiveModel:
    """Make a logged model active, by id or by name (the newest of that name in the active
    experiment; an external model of that name is created when there is none)."""
    if name is None and model_id is None:
        raise InvalidParameterValue("Either name or model_id must be provided")
    if model_id is not None:
        model = get_logged_model(model_id)
        if name is not None and model.name != name:
            raise InvalidParameterValue(
                f"LoggedModel with model_id {model_id!r} has name {model.name!r}, which does not match "
                f"the provided name {name!r}."
            )
    else:
        escaped = str(name).replace("'", "\\'")
        found = search_logged_models(filter_string=f"name='{escaped}'", max_results=2, output_format="list")
        if len(found) > 1:
            logger.warning(
                "Multiple LoggedModels found with name %r, setting the latest one as active model.", name
            )
        model = found[0] if found else create_external_model(name=name)
    active = ActiveModel(model, _active_model_id.get())
    _active_model_id.set(model.model_id)
    logger.info("Active model is set to the logged model with ID: %s", model.model_id)
    return active


def clear_active_model() -> None:
    """No active model in this context (the environment variables are cleared too, as in MLflow)."""
    for name in _ACTIVE_MODEL_ENVS:
        os.environ.pop(name, None)
    _active_model_id.set(None)


def _reset_for_tests() -> None:
    _last_model_id.set(None)
    _active_model_id.set(_UNSET)
