"""What every flavor's ``save_model`` / ``log_model`` shares: the directory, the files, the run upload."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flowml.exceptions import FlowmlError, InvalidParameterValue, ResourceAlreadyExists
from flowml.models.env import write_environment
from flowml.models.example import save_input_example
from flowml.models.integrity import MANIFEST_FILE, ModelIntegrityError, compute_file_digests, write_manifest
from flowml.models.mlmodel import MLMODEL_FILE, Model, ModelInfo
from flowml.models.signature import ModelSignature

if TYPE_CHECKING:
    from flowml.client import FlowmlClient
    from flowml.entities import LoggedModel

__all__ = ["copy_code_paths", "finish_model_dir", "log_model_to_run", "new_model_dir", "python_version"]

logger = logging.getLogger(__name__)


def python_version() -> str:
    return platform.python_version()


def new_model_dir(path: str | os.PathLike[str]) -> str:
    """Create ``path`` (refusing to overwrite a non-empty directory, as MLflow does)."""
    target = os.path.abspath(os.fspath(path))
    if os.path.exists(target) and (not os.path.isdir(target) or os.listdir(target)):
        raise ResourceAlreadyExists(f"Path '{target}' already exists and is not empty")
    os.makedirs(target, exist_ok=True)
    return target


def copy_code_paths(path: str, code_paths: Sequence[str | os.PathLike[str]] | None) -> str | None:
    """Copy ``code_paths`` (files or dirs) into ``<path>/code``; return the flavor's ``code`` entry."""
    if not code_paths:
        return None
    code_dir = os.path.join(path, "code")
    os.makedirs(code_dir, exist_ok=True)
    for src in code_paths:
        src = os.fspath(src)
        if not os.path.exists(src):
            raise InvalidParameterValue(f"code path {src!r} does not exist")
        dst = os.path.join(code_dir, os.path.basename(os.path.normpath(src)))
        if os.path.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dst)
    return "code"


def _dir_size(path: str) -> int:
    return sum(size for size, _ in compute_file_digests(path).values())


def finish_model_dir(
    path: str,
    model: Model,
    *,
    default_dists: Sequence[str],
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    metadata: Mapping[str, Any] | None = None,
) -> Model:
    """Write input example, environment files, ``MLmodel`` and (last) the integrity manifest."""
    if input_example is not None:
        model.saved_input_example_info = save_input_example(path, input_example)
    if signature is not None:
        model.signature = signature
    if metadata:
        model.metadata = dict(metadata)
    env = write_environment(path, default_dists, pip_requirements, extra_pip_requirements)
    model.flavors.setdefault("python_function", {})["env"] = env
    model.model_size_bytes = _dir_size(path)
    model.save(os.path.join(path, MLMODEL_FILE))
    write_manifest(path)
    return model


def _model_name(artifact_path: str | None, name: str | None) -> str | None:
    """MLflow 3's ``name`` / deprecated ``artifact_path`` rule."""
    if artifact_path is not None and name is not None:
        raise InvalidParameterValue(
            "Both `artifact_path` (deprecated) and `name` parameters were specified. "
            "Please only specify `name`."
        )
    if artifact_path is not None:
        logger.warning("`artifact_path` is deprecated. Please use `name` instead.")
    return name or artifact_path


def _target_run(run_id: str | None) -> tuple[str | None, FlowmlClient]:
    """The run to log to (``run_id``, else the active run, else none: MLflow 3 starts no run) and the
    client; the active run's buffered metrics are written first (the model copies them)."""
    from flowml.client import FlowmlClient
    from flowml.tracking import fluent

    active = fluent.active_run()
    if active is not None and run_id in (None, active.run_id):
        if active.buffer is not None:
            active.buffer.flush()
        return active.run_id, active.client
    return run_id, FlowmlClient()


def _record_output(run_id: str, model_id: str, step: int) -> None:
    """Tell the active run (when it is ``run_id``) that it logged ``model_id`` at ``step``."""
    from flowml.tracking import fluent

    active = fluent.active_run()
    if active is not None and active.run_id == run_id:
        active.record_model_output(model_id, step)


def _copy_step_metrics(client: FlowmlClient, model_id: str, run_id: str, step: int) -> None:
    """The run's metric points at ``step`` become the model's too (MLflow 3's ``log_model``)."""
    from flowml.entities import ModelMetric

    points = [
        ModelMetric(m.key, m.value, m.timestamp, m.step, model_id, run_id)
        for key in client.get_run(run_id).data.metrics
        for m in client.get_metric_history(run_id, key)
        if m.step == step
    ]
    if points:
        client.backend.logged_models.log_metrics(run_id, points)


@contextlib.contextmanager
def _finalized(client: FlowmlClient, model_id: str) -> Iterator[None]:
    """READY when the block succeeds, FAILED (and the error re-raised) when it does not."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(FlowmlError):
            client.finalize_logged_model(model_id, "FAILED")
        raise
    client.finalize_logged_model(model_id, "READY")


def _create_model(
    client: FlowmlClient,
    run_id: str | None,
    name: str | None,
    params: Mapping[str, Any] | None,
    tags: Mapping[str, Any] | None,
    model_type: str | None,
) -> LoggedModel:
    from flowml.tracking import fluent
    from flowml.tracking.logged_models import context_tags

    run_params: Mapping[str, str] = {}
    if run_id is not None:
        run = client.get_run(run_id)
        experiment_id, run_params = run.info.experiment_id, run.data.params
    else:
        experiment_id = fluent._active_experiment_id(client)
    return client.create_logged_model(
        experiment_id, name, run_id, context_tags(tags), {**dict(params or {}), **run_params}, model_type
    )


def _upload(client: FlowmlClient, model: Model, logged: LoggedModel, local: str) -> None:
    model.artifact_path = logged.artifact_location
    model.model_uuid = logged.model_id
    model.extra["model_id"] = logged.model_id
    model.save(os.path.join(local, MLMODEL_FILE))
    manifest = write_manifest(local)
    records = client._log_model_artifacts(logged.model_id, local)
    expected = {rel: (v["size"], v["sha256"]) for rel, v in manifest["files"].items()}
    uploaded = {r.path: (r.file_size, r.sha256) for r in records if r.path != MANIFEST_FILE}
    if uploaded != expected:
        raise ModelIntegrityError(
            f"The files uploaded for logged model {logged.model_id} do not match what was saved: "
            f"{sorted(set(uploaded) ^ set(expected)) or 'content differs'}"
        )


def log_model_to_run(
    save: Callable[..., Model],
    artifact_path: str | None,
    name: str | None,
    *,
    run_id: str | None = None,
    registered_model_name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    model_id: str | None = None,
    await_registration_for: int = 300,
    **save_kwargs: Any,
) -> ModelInfo:
    """MLflow 3's ``log_model``: create a logged model (in the run's experiment, ``source_run_id`` the
    active run or ``run_id`` when there is one), record it as the run's output with the run's params and
    its metrics at ``step``, save with ``save`` into a temp dir, upload to the model's artifact location,
    finalize it READY (FAILED on error), then register it when ``registered_model_name`` is given.
    ``model_id`` logs the files to an existing logged model (``initialize_logged_model``) instead."""
    from flowml.entities import LoggedModelOutput
    from flowml.tracking.logged_models import _set_last_logged_model_id

    model_name = _model_name(artifact_path, name)
    rid, client = _target_run(run_id)
    if model_id is not None:
        logged = client.get_logged_model(model_id)
    else:
        logged = _create_model(client, rid, model_name, params, tags, model_type)
        _set_last_logged_model_id(logged.model_id)
    with _finalized(client, logged.model_id), tempfile.TemporaryDirectory(prefix="flowml-log-model-") as tmp:
        if rid is not None:
            client.log_outputs(rid, [LoggedModelOutput(logged.model_id, step)])
            _record_output(rid, logged.model_id, step)
            _copy_step_metrics(client, logged.model_id, rid, step)
        local = os.path.join(tmp, "model")
        model = save(path=local, **save_kwargs)
        model.run_id = rid
        _upload(client, model, logged, local)
    model_uri = f"models:/{logged.model_id}"
    version = None
    if registered_model_name:
        from flowml.registry.fluent import register_model

        version = register_model(model_uri, registered_model_name, await_registration_for, tags=tags).version
    return ModelInfo(
        artifact_path=logged.artifact_location,
        flavors=model.flavors,
        model_uri=model_uri,
        model_uuid=logged.model_id,
        run_id=rid,
        saved_input_example_info=model.saved_input_example_info,
        signature=model.signature,
        utc_time_created=model.utc_time_created,
        flowml_version=model.flowml_version,
        name=logged.name,
        creation_timestamp=logged.creation_timestamp,
        params=dict(logged.params),
        tags=dict(logged.tags),
        metadata=model.metadata,
        registered_model_version=int(version) if version is not None else None,
    )
