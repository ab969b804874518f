"""What every flavor's ``save_model`` / ``log_model`` shares: the directory, the files, the run upload."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flowml.exceptions import FlowmlError, InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from flowml.models.env import write_environment
from flowml.models.example import save_input_example
from flowml.models.integrity import MANIFEST_FILE, ModelIntegrityError, compute_file_digests, write_manifest
from flowml.models.mlmodel import MLMODEL_FILE, Model, ModelInfo
from flowml.models.signature import ModelSignature

__all__ = ["copy_code_paths", "finish_model_dir", "log_model_to_run", "new_model_dir", "python_version"]

DEFAULT_ARTIFACT_PATH = "model"


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


def _register(model_uri: str, name: str) -> None:
    import flowml

    register = getattr(flowml, "register_model", None)
    if register is None:
        raise ResourceDoesNotExist(
            f"Cannot register {model_uri!r} as {name!r}: the model registry is not available yet"
        )
    register(model_uri, name)


def log_model_to_run(
    save: Callable[..., Model],
    artifact_path: str | None,
    name: str | None,
    *,
    run_id: str | None = None,
    registered_model_name: str | None = None,
    **save_kwargs: Any,
) -> ModelInfo:
    """Save with ``save`` into a temp dir, stamp run id/artifact path, upload, cross-check checksums."""
    from flowml.tracking.fluent import _target

    if artifact_path and name and artifact_path != name:
        raise InvalidParameterValue("Give either `name` or `artifact_path` (deprecated), not both")
    path = (name or artifact_path or DEFAULT_ARTIFACT_PATH).strip("/")
    _, rid, client = _target(run_id)
    with tempfile.TemporaryDirectory(prefix="flowml-log-model-") as tmp:
        local = os.path.join(tmp, "model")
        model = save(path=local, **save_kwargs)
        model.run_id = rid
        model.artifact_path = path
        model.save(os.path.join(local, MLMODEL_FILE))
        manifest = write_manifest(local)
        client.log_artifacts(rid, local, path)
    recorded = client.get_artifact_checksums(rid)
    expected = {rel: (v["size"], v["sha256"]) for rel, v in manifest["files"].items()}
    uploaded = {rel[len(path) + 1 :]: v for rel, v in recorded.items() if rel.startswith(path + "/")}
    uploaded.pop(MANIFEST_FILE, None)
    if recorded and uploaded != expected:
        raise ModelIntegrityError(
            f"The model uploaded to run {rid} at {path!r} does not match what was saved: "
            f"{sorted(set(uploaded) ^ set(expected)) or 'content differs'}"
        )
    model_uri = f"runs:/{rid}/{path}"
    if registered_model_name:
        _register(model_uri, registered_model_name)
    with contextlib.suppress(FlowmlError):  # a tag too long for the store must not fail logging the model
        client.set_tag(rid, "mlflow.log-model.history", _history(client, rid, model))
    return ModelInfo(
        artifact_path=path,
        flavors=model.flavors,
        model_uri=model_uri,
        model_uuid=model.model_uuid,
        run_id=rid,
        saved_input_example_info=model.saved_input_example_info,
        signature=model.signature,
        utc_time_created=model.utc_time_created,
        flowml_version=model.flowml_version,
    )


def _history(client: Any, run_id: str, model: Model) -> str:
    import json

    existing = client.get_run(run_id).data.tags.get("mlflow.log-model.history")
    entries = json.loads(existing) if existing else []
    entry = {k: v for k, v in model.to_dict().items() if k not in ("signature", "saved_input_example_info")}
    entries.append(entry)
    return json.dumps(entries)
