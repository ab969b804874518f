"""The ``python_function`` flavor: custom ``PythonModel``s, and ``load_model`` for every flavor.

``load_model(uri)`` resolves the URI to a local directory, verifies its integrity (manifest and, for
``runs:/``, the run's recorded checksums) *before* any loader runs, then calls the loader module named
in ``MLmodel`` — MLflow's loader modules (``mlflow.sklearn``, ``mlflow.xgboost``, ``mlflow.pyfunc.model``)
are mapped to flowml's own, so MLflow-saved models load without importing mlflow's loaders.

Custom models are saved as MLflow saves them (``python_model.pkl`` by cloudpickle, ``loader_module:
mlflow.pyfunc.model``), so ``mlflow.pyfunc.load_model`` loads them too.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from flowml.exceptions import FlowmlError, InvalidParameterValue
from flowml.models.enforce import enforce_params, enforce_schema
from flowml.models.integrity import verify_model_dir
from flowml.models.mlmodel import Model, ModelInfo
from flowml.models.python_model import (
    PYTHON_MODEL_FILE,
    PythonModel,
    PythonModelContext,
    _call_predict,
    _load_python_model,
    _PythonModelWrapper,
)
from flowml.models.save import (
    copy_code_paths,
    finish_model_dir,
    log_model_to_run,
    new_model_dir,
    python_version,
)
from flowml.models.signature import ModelSignature, infer_signature
from flowml.models.uri import resolve_model_uri

__all__ = [
    "FLAVOR_NAME",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "get_model_info",
    "load_model",
    "log_model",
    "save_model",
    "validate_serving_input",
]

_log = logging.getLogger(__name__)

FLAVOR_NAME = "python_function"
#: What MLflow writes for custom Python models; flowml writes the same for interop.
PYFUNC_LOADER = "mlflow.pyfunc.model"

#: MLflow loader modules (and flowml's own names) -> the flowml module that implements ``_load_pyfunc``.
LOADER_MODULES: dict[str, str] = {
    "mlflow.pyfunc.model": "flowml.models.pyfunc",
    "mlflow.sklearn": "flowml.models.flavors.sklearn",
    "mlflow.xgboost": "flowml.models.flavors.xgboost",
    "flowml.models.pyfunc": "flowml.models.pyfunc",
    "flowml.models.flavors.sklearn": "flowml.models.flavors.sklearn",
    "flowml.models.flavors.xgboost": "flowml.models.flavors.xgboost",
}


class PyFuncModel:
    """A loaded model: ``predict(data, params=None)`` with signature enforcement; ``metadata``."""

    def __init__(self, model_meta: Model, model_impl: Any, model_path: str, integrity: str = "unverified"):
        self._meta = model_meta
        self._impl = model_impl
        self.model_path = model_path
        #: how the directory was verified before loading: "manifest", "run" or "unverified"
        self.integrity = integrity

    @property
    def metadata(self) -> Model:
        return self._meta

    @property
    def loader_module(self) -> str:
        return str(self._meta.flavors[FLAVOR_NAME]["loader_module"])

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return self.predict_prepared(self.prepare_input(data), params)

    def prepare_input(self, data: Any) -> Any:
        """``data`` checked and converted against the input signature, as :meth:`predict` does first."""
        signature = self._meta.signature
        if signature is not None and signature.inputs is not None:
            return enforce_schema(data, signature.inputs)
        return data

    def predict_prepared(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """:meth:`predict` without the input check, for input that went through :meth:`prepare_input`
        (or already conforms to the signature); ``params`` are still checked."""
        signature = self._meta.signature
        params = enforce_params(params, signature.params if signature is not None else None)
        return self._impl.predict(data, params=params)

    def unwrap_python_model(self) -> Any:
        if not isinstance(self._impl, _PythonModelWrapper):
            raise InvalidParameterValue("unwrap_python_model() is only for models saved with python_model=")
        return self._impl.python_model

    def get_raw_model(self) -> Any:
        return self._impl.get_raw_model()

    def input_example(self) -> Any:
        return self._meta.load_input_example(self.model_path)

    def smoke_test(self) -> Any:
        """Predict on the saved input example; return the prediction (None when there is no example).

        Raises the prediction's error, so a model that cannot score its own example fails loudly
        right after loading (``flowml models serve`` runs this before accepting traffic).
        """
        example = self.input_example()
        if example is None:
            return None
        return self.predict(example)

    def __repr__(self) -> str:
        return (
            f"<PyFuncModel loader_module={self.loader_module} run_id={self._meta.run_id} "
            f"path={self.model_path}>"
        )


# -- loading -----------------------------------------------------------------------------------
def _add_code_to_path(local_path: str, conf: Mapping[str, Any]) -> None:
    code = conf.get("code")
    if not code:
        return
    code_dir = os.path.join(local_path, code)
    if os.path.isdir(code_dir):
        for entry in sorted(os.listdir(code_dir)):
            full = os.path.join(code_dir, entry)
            if os.path.isdir(full) and not os.path.isfile(os.path.join(full, "__init__.py")):
                sys.path.insert(0, full)
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)


def load_verified(model_uri: str | os.PathLike[str], dst_path: str | None = None) -> tuple[str, Model, str]:
    """Resolve, verify (before anything is deserialised) and read ``MLmodel``: (path, model, status)."""
    resolved = resolve_model_uri(model_uri, dst_path)
    local = resolved.local_path
    if os.path.isfile(local):  # a file inside a model dir (MLflow accepts .../model/model.pkl)
        local = os.path.dirname(local)
    status = verify_model_dir(local, resolved.run_checksums, source=resolved.source_uri)
    return local, Model.load(local), status


def load_model(
    model_uri: str | os.PathLike[str],
    suppress_warnings: bool = False,
    dst_path: str | None = None,
    model_config: Mapping[str, Any] | None = None,
) -> PyFuncModel:
    """Load any flavor as a :class:`PyFuncModel` (MLflow's ``mlflow.pyfunc.load_model``)."""
    local, meta, status = load_verified(model_uri, dst_path)
    if FLAVOR_NAME not in meta.flavors:
        raise InvalidParameterValue(
            f'Model at {os.fspath(model_uri)!r} has no "python_function" flavor, so it cannot be loaded as a '
            f"pyfunc (flavors: {sorted(meta.flavors)})",
            error_code="RESOURCE_DOES_NOT_EXIST",
        )
    conf = meta.flavors[FLAVOR_NAME]
    loader_name = str(conf.get("loader_module", ""))
    module_name = LOADER_MODULES.get(loader_name)
    if module_name is None:
        raise InvalidParameterValue(
            f"Model at {os.fspath(model_uri)!r} uses loader module {loader_name!r}, which flowml does not "
            f"support (supported: {sorted(k for k in LOADER_MODULES if k.startswith('mlflow.'))})"
        )
    _add_code_to_path(local, conf)
    data_path = os.path.join(local, conf["data"]) if conf.get("data") else local
    loader = importlib.import_module(module_name)
    if "model_config" in inspect.signature(loader._load_pyfunc).parameters:
        impl = loader._load_pyfunc(data_path, model_config=model_config)
    else:
        impl = loader._load_pyfunc(data_path)
    return PyFuncModel(meta, impl, local, status)


def validate_serving_input(model_uri: str | os.PathLike[str], serving_input: Any) -> Any:
    """Load ``model_uri`` and score an MLflow JSON payload (``{"dataframe_split": ...}``...) with it."""
    from flowml.models.example import parse_serving_input

    data, params = parse_serving_input(serving_input)
    return load_model(model_uri).predict(data, params=params)


def get_model_info(model_uri: str) -> Model:
    """The ``MLmodel`` metadata of ``model_uri`` (integrity-checked; nothing is deserialised)."""
    return load_verified(model_uri)[1]


def _load_pyfunc(model_path: str, model_config: Mapping[str, Any] | None = None) -> _PythonModelWrapper:
    """Loader for ``loader_module: mlflow.pyfunc.model`` (custom PythonModels)."""
    meta = Model.load(model_path)
    conf = meta.flavor(FLAVOR_NAME)
    if conf.get("model_code_path"):
        raise InvalidParameterValue("Models-from-code (model_code_path) are not supported by flowml yet")
    python_model = _load_python_model(model_path, conf)
    artifacts = {
        name: os.path.join(model_path, info["path"]) for name, info in (conf.get("artifacts") or {}).items()
    }
    config = dict(conf.get("model_config") or {})
    config.update(model_config or {})
    context = PythonModelContext(artifacts, config)
    python_model.load_context(context=context)
    return _PythonModelWrapper(python_model, context)


# -- saving ------------------------------------------------------------------------------------
def _copy_artifacts(path: str, artifacts: Mapping[str, str] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Copy each artifact into ``<path>/artifacts``: (flavor entry, name → local path)."""
    if not artifacts:
        return {}, {}
    conf: dict[str, Any] = {}
    local: dict[str, str] = {}
    root = os.path.join(path, "artifacts")
    os.makedirs(root, exist_ok=True)
    for name, uri in artifacts.items():
        src = resolve_model_uri(uri).local_path
        dst = os.path.join(root, os.path.basename(os.path.normpath(src)))
        if os.path.exists(dst):
            raise InvalidParameterValue(f"Two artifacts would be saved as {os.path.basename(dst)!r}")
        if os.path.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
        rel = os.path.relpath(dst, path).replace(os.sep, "/")
        conf[name] = {"path": rel, "uri": str(uri)}
        local[name] = dst
    return conf, local


def save_model(
    path: str | os.PathLike[str],
    loader_module: str | None = None,
    data_path: str | None = None,
    code_paths: Sequence[str] | None = None,
    conda_env: Any = None,
    python_model: Any = None,
    artifacts: Mapping[str, str] | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    metadata: Mapping[str, Any] | None = None,
    model_config: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Model:
    """Save a custom ``python_model`` (cloudpickle) with MLflow's layout; returns the ``MLmodel``."""
    if python_model is None:
        raise InvalidParameterValue(
            "save_model needs `python_model=` (loader_module models are not supported)"
        )
    if loader_module is not None or data_path is not None:
        raise InvalidParameterValue("Give either `python_model` or `loader_module`/`data_path`, not both")
    if isinstance(python_model, str | os.PathLike):
        raise InvalidParameterValue("Models-from-code (python_model as a file path) are not supported yet")
    if not hasattr(python_model, "predict"):
        raise InvalidParameterValue("`python_model` must be a PythonModel (an object with a predict method)")
    import cloudpickle

    target = new_model_dir(path)
    try:
        artifacts_conf, local_artifacts = _copy_artifacts(target, artifacts)
        code = copy_code_paths(target, code_paths)
        with open(os.path.join(target, PYTHON_MODEL_FILE), "wb") as fh:
            cloudpickle.dump(python_model, fh)
        if signature is None and input_example is not None:
            signature = _infer_from_example(python_model, local_artifacts, model_config, input_example)
        conf: dict[str, Any] = {
            "loader_module": PYFUNC_LOADER,
            "python_version": python_version(),
            "python_model": PYTHON_MODEL_FILE,
            "cloudpickle_version": cloudpickle.__version__,
            "code": code,
            "streamable": hasattr(python_model, "predict_stream"),
        }
        if artifacts_conf:
            conf["artifacts"] = artifacts_conf
        if model_config:
            conf["model_config"] = dict(model_config)
        model = Model(flavors={FLAVOR_NAME: conf})
        return finish_model_dir(
            target,
            model,
            default_dists=("cloudpickle", "numpy", "pandas"),
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            metadata=metadata,
        )
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def _infer_from_example(
    python_model: Any, artifacts: Mapping[str, str], model_config: Mapping[str, Any] | None, example: Any
) -> ModelSignature | None:
    try:
        context = PythonModelContext(artifacts, model_config)
        python_model.load_context(context=context)
        return infer_signature(example, _call_predict(python_model, context, example, None))
    except (FlowmlError, Exception) as exc:  # noqa: BLE001 - inference is best effort, as in MLflow
        _log.warning("Could not infer a signature from the input example: %s", exc)
        try:
            return infer_signature(example)
        except FlowmlError:
            return None


def log_model(
    artifact_path: str | None = None,
    python_model: Any = None,
    artifacts: Mapping[str, str] | None = None,
    registered_model_name: str | None = None,
    *,
    name: str | None = None,
    run_id: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Save a custom model and log it to the active run (or ``run_id``) under ``name``."""
    return log_model_to_run(
        save_model,
        artifact_path,
        name,
        run_id=run_id,
        registered_model_name=registered_model_name,
        python_model=python_model,
        artifacts=artifacts,
        **kwargs,
    )
