"""The ``sklearn`` flavor, written exactly as ``mlflow.sklearn.save_model`` writes it.

``serialization_format``: ``cloudpickle`` (default, ``model.pkl``), ``pickle`` (``model.pkl``) or
``skops`` (``model.skops``, MLflow 3.17's default; needs the ``skops`` package). The pyfunc flavor's
``loader_module`` is ``mlflow.sklearn``, so MLflow loads flowml models, and flowml maps it back here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from flowml.exceptions import InvalidParameterValue
from flowml.models.integrity import check_deserialization_allowed
from flowml.models.mlmodel import Model, ModelInfo
from flowml.models.save import (
    copy_code_paths,
    finish_model_dir,
    log_model_to_run,
    new_model_dir,
    python_version,
)
from flowml.models.signature import ModelSignature, infer_signature_from_predict

__all__ = [
    "FLAVOR_NAME",
    "SERIALIZATION_FORMAT_CLOUDPICKLE",
    "SERIALIZATION_FORMAT_PICKLE",
    "SERIALIZATION_FORMAT_SKOPS",
    "load_model",
    "log_model",
    "save_model",
]

FLAVOR_NAME = "sklearn"
LOADER_MODULE = "mlflow.sklearn"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SERIALIZATION_FORMAT_SKOPS = "skops"
SUPPORTED_SERIALIZATION_FORMATS = (
    SERIALIZATION_FORMAT_PICKLE,
    SERIALIZATION_FORMAT_CLOUDPICKLE,
    SERIALIZATION_FORMAT_SKOPS,
)


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


def _dump(model: Any, path: str, fmt: str, trusted: Sequence[str] | None) -> None:
    if fmt == SERIALIZATION_FORMAT_SKOPS:
        import skops.io  # type: ignore[import-untyped]

        skops.io.dump(model, path)
        untrusted = set(skops.io.get_untrusted_types(file=path)) - set(trusted or ())
        if untrusted:
            os.remove(path)
            raise InvalidParameterValue(
                f"The model contains types skops does not trust by default: {sorted(untrusted)}. Review them "
                "and pass them as `skops_trusted_types`, or use serialization_format='cloudpickle'."
            )
        return
    import pickle

    import cloudpickle

    with open(path, "wb") as fh:
        if fmt == SERIALIZATION_FORMAT_CLOUDPICKLE:
            cloudpickle.dump(model, fh)
        else:
            pickle.dump(model, fh, protocol=pickle.DEFAULT_PROTOCOL)


def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    mlflow_model: Model | None = None,
    serialization_format: str = SERIALIZATION_FORMAT_CLOUDPICKLE,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    pyfunc_predict_fn: str = "predict",
    metadata: Mapping[str, Any] | None = None,
    skops_trusted_types: Sequence[str] | None = None,
) -> Model:
    """Save a scikit-learn estimator (or Pipeline) as an MLflow model directory; returns the MLmodel."""
    if serialization_format not in SUPPORTED_SERIALIZATION_FORMATS:
        raise InvalidParameterValue(
            f"Unrecognized serialization format: {serialization_format}. Please specify one of the "
            f"following supported formats: {list(SUPPORTED_SERIALIZATION_FORMATS)}."
        )
    if not hasattr(sk_model, pyfunc_predict_fn):
        raise InvalidParameterValue(f"The model has no {pyfunc_predict_fn!r} method to use as pyfunc predict")
    target = new_model_dir(path)
    try:
        code = copy_code_paths(target, code_paths)
        filename = "model.skops" if serialization_format == SERIALIZATION_FORMAT_SKOPS else "model.pkl"
        _dump(sk_model, os.path.join(target, filename), serialization_format, skops_trusted_types)
        if signature is None and input_example is not None:
            signature = infer_signature_from_predict(
                lambda x: getattr(sk_model, pyfunc_predict_fn)(x), input_example
            )
        model = mlflow_model or Model()
        model.add_flavor(
            "python_function",
            loader_module=LOADER_MODULE,
            model_path=filename,
            predict_fn=pyfunc_predict_fn,
            python_version=python_version(),
        )
        model.add_flavor(
            FLAVOR_NAME,
            pickled_model=filename,
            sklearn_version=_sklearn_version(),
            serialization_format=serialization_format,
            skops_trusted_types=list(skops_trusted_types) if skops_trusted_types else None,
            code=code,
        )
        dists = ["scikit-learn", "numpy", "scipy", "pandas"]
        dists.append("skops" if serialization_format == SERIALIZATION_FORMAT_SKOPS else "cloudpickle")
        return finish_model_dir(
            target,
            model,
            default_dists=dists,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements,
            extra_pip_requirements=extra_pip_requirements,
            metadata=metadata,
        )
    except BaseException:
        import shutil

        shutil.rmtree(target, ignore_errors=True)
        raise


def log_model(
    sk_model: Any,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    *,
    name: str | None = None,
    run_id: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Save ``sk_model`` and log it to the active run (or ``run_id``) under ``name`` (default ``model``)."""
    return log_model_to_run(
        save_model,
        artifact_path,
        name,
        run_id=run_id,
        registered_model_name=registered_model_name,
        sk_model=sk_model,
        **kwargs,
    )


def _load_from_file(path: str, fmt: str, trusted: Sequence[str] | None) -> Any:
    if fmt not in SUPPORTED_SERIALIZATION_FORMATS:
        raise InvalidParameterValue(f"Unrecognized serialization format: {fmt}")
    check_deserialization_allowed(f"a scikit-learn model ({fmt})")
    if fmt == SERIALIZATION_FORMAT_SKOPS:
        try:
            import skops.io  # type: ignore[import-untyped]
        except ImportError as exc:
            raise InvalidParameterValue(
                "This model was saved with skops (MLflow's default for scikit-learn); "
                "install `skops` to load it"
            ) from exc
        return skops.io.load(path, trusted=list(trusted) if trusted else None)
    import cloudpickle

    with open(path, "rb") as fh:
        return cloudpickle.load(fh)


def _model_file(model_dir: str) -> tuple[str, str, list[str] | None]:
    meta = Model.load(model_dir)
    conf = meta.flavors.get(FLAVOR_NAME)
    if conf is None:
        pyfunc = meta.flavor("python_function")
        return os.path.join(model_dir, pyfunc["model_path"]), SERIALIZATION_FORMAT_PICKLE, None
    fmt = str(conf.get("serialization_format", SERIALIZATION_FORMAT_PICKLE))
    return os.path.join(model_dir, conf["pickled_model"]), fmt, conf.get("skops_trusted_types")


def load_model(model_uri: str | os.PathLike[str], dst_path: str | None = None) -> Any:
    """The scikit-learn estimator saved at ``model_uri`` (integrity-checked before unpickling)."""
    from flowml.models.pyfunc import load_verified

    local, meta, _ = load_verified(model_uri, dst_path)
    meta.flavor(FLAVOR_NAME)
    return _load_from_file(*_model_file(local))


class _SklearnModelWrapper:
    def __init__(self, sk_model: Any, predict_fn: str = "predict") -> None:
        self.sklearn_model = sk_model
        self.predict_fn = predict_fn

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return getattr(self.sklearn_model, self.predict_fn)(data)

    def get_raw_model(self) -> Any:
        return self.sklearn_model


def _load_pyfunc(path: str) -> _SklearnModelWrapper:
    """Loader for ``loader_module: mlflow.sklearn`` (``path`` is the model dir or the model file)."""
    model_dir = os.path.dirname(path) if os.path.isfile(path) else path
    meta = Model.load(model_dir)
    predict_fn = str(meta.flavors.get("python_function", {}).get("predict_fn", "predict"))
    return _SklearnModelWrapper(_load_from_file(*_model_file(model_dir)), predict_fn)


def autolog(**kwargs: Any) -> None:
    """Autolog scikit-learn ``fit`` calls (see :func:`flowml.models.autolog.autolog_sklearn`)."""
    from flowml.models.autolog import autolog_sklearn

    autolog_sklearn(**kwargs)
