"""The ``xgboost`` flavor, written exactly as ``mlflow.xgboost.save_model`` writes it.

The model is stored in XGBoost's own format (``model.ubj`` by default, or ``model.json``/``.deprecated``),
never pickled, with ``model_class`` naming the class to rebuild (``xgboost.core.Booster``,
``xgboost.sklearn.XGBClassifier``...). The pyfunc ``loader_module`` is ``mlflow.xgboost``.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Mapping, Sequence
from typing import Any

from flowml.exceptions import InvalidParameterValue
from flowml.models.mlmodel import Model, ModelInfo
from flowml.models.save import (
    copy_code_paths,
    finish_model_dir,
    log_model_to_run,
    new_model_dir,
    python_version,
)
from flowml.models.signature import ModelSignature, infer_signature_from_predict

__all__ = ["FLAVOR_NAME", "load_model", "log_model", "save_model"]

FLAVOR_NAME = "xgboost"
LOADER_MODULE = "mlflow.xgboost"
_FORMATS = ("ubj", "json", "deprecated")


def save_model(
    xgb_model: Any,
    path: str | os.PathLike[str],
    conda_env: Any = None,
    code_paths: Sequence[str] | None = None,
    mlflow_model: Model | None = None,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: Any = None,
    extra_pip_requirements: Any = None,
    model_format: str = "ubj",
    metadata: Mapping[str, Any] | None = None,
) -> Model:
    """Save an XGBoost ``Booster`` or scikit-learn-API model (``XGBClassifier``...); returns the MLmodel."""
    import xgboost as xgb

    if model_format not in _FORMATS:
        raise InvalidParameterValue(
            f"Unsupported XGBoost model_format {model_format!r}: use one of {_FORMATS}"
        )
    if not isinstance(xgb_model, xgb.Booster | xgb.XGBModel):
        raise InvalidParameterValue(
            f"Expected an xgboost Booster or XGBModel, got {type(xgb_model).__name__}"
        )
    target = new_model_dir(path)
    try:
        code = copy_code_paths(target, code_paths)
        filename = f"model.{model_format}"
        xgb_model.save_model(os.path.join(target, filename))
        if signature is None and input_example is not None:
            signature = infer_signature_from_predict(
                lambda x: _XGBModelWrapper(xgb_model).predict(x), input_example
            )
        cls = type(xgb_model)
        model = mlflow_model or Model()
        model.add_flavor(
            "python_function",
            loader_module=LOADER_MODULE,
            data=filename,
            python_version=python_version(),
        )
        model.add_flavor(
            FLAVOR_NAME,
            data=filename,
            model_class=f"{cls.__module__}.{cls.__name__}",
            model_format=model_format,
            xgb_version=xgb.__version__,
            code=code,
        )
        return finish_model_dir(
            target,
            model,
            default_dists=("xgboost", "numpy", "scipy", "pandas", "scikit-learn"),
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
    xgb_model: Any,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    *,
    name: str | None = None,
    run_id: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Save ``xgb_model`` and log it to the active run (or ``run_id``) under ``name`` (default ``model``)."""
    return log_model_to_run(
        save_model,
        artifact_path,
        name,
        run_id=run_id,
        registered_model_name=registered_model_name,
        xgb_model=xgb_model,
        **kwargs,
    )


def _model_class(name: str) -> type:
    """The xgboost class named in MLmodel; anything outside the xgboost package is refused."""
    module_name, _, cls_name = name.rpartition(".")
    if module_name != "xgboost" and not module_name.startswith("xgboost."):
        raise InvalidParameterValue(f"Refusing to load an XGBoost model of non-xgboost class {name!r}")
    cls = getattr(importlib.import_module(module_name), cls_name, None)
    if not isinstance(cls, type):
        raise InvalidParameterValue(f"Unknown XGBoost model class {name!r}")
    return cls


def _load_from_dir(model_dir: str) -> Any:
    conf = Model.load(model_dir).flavor(FLAVOR_NAME)
    model = _model_class(str(conf.get("model_class", "xgboost.core.Booster")))()
    model.load_model(os.path.join(model_dir, conf["data"]))
    return model


def load_model(model_uri: str | os.PathLike[str], dst_path: str | None = None) -> Any:
    """The XGBoost model saved at ``model_uri`` (a ``Booster`` or the saved scikit-learn-API class)."""
    from flowml.models.pyfunc import load_verified

    local, meta, _ = load_verified(model_uri, dst_path)
    meta.flavor(FLAVOR_NAME)
    return _load_from_dir(local)


def _accepted(fn: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    allowed = inspect.signature(fn).parameters
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in allowed.values()):
        return dict(params)
    return {k: v for k, v in params.items() if k in allowed}


class _XGBModelWrapper:
    def __init__(self, xgb_model: Any) -> None:
        self.xgb_model = xgb_model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import xgboost as xgb

        params = params or {}
        if isinstance(self.xgb_model, xgb.Booster):
            kwargs = _accepted(self.xgb_model.predict, params)
            return self.xgb_model.predict(xgb.DMatrix(data), validate_features=True, **kwargs)
        return self.xgb_model.predict(data, **_accepted(self.xgb_model.predict, params))

    def get_raw_model(self) -> Any:
        return self.xgb_model


def _load_pyfunc(path: str) -> _XGBModelWrapper:
    """Loader for ``loader_module: mlflow.xgboost`` (``path`` is the model file or directory)."""
    return _XGBModelWrapper(_load_from_dir(os.path.dirname(path) if os.path.isfile(path) else path))


def autolog(**kwargs: Any) -> None:
    """Autolog ``xgboost.train`` and the scikit-learn API (:func:`flowml.models.autolog.autolog_xgboost`)."""
    from flowml.models.autolog_xgboost import autolog_xgboost

    autolog_xgboost(**kwargs)
