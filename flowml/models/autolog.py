"""Autologging for scikit-learn and XGBoost, reversibly patched (``autolog(disable=True)`` restores).

scikit-learn (``autolog_sklearn``): every estimator's ``fit``/``fit_transform``/``fit_predict`` logs, in the
active run or a new one (ended after ``fit``): ``get_params(deep=True)``, tags ``estimator_name`` /
``estimator_class``, MLflow's training metrics (``training_score`` and, for classifiers,
``training_accuracy_score``/``precision``/``recall``/``f1``/``log_loss``/``roc_auc``; for regressors
``training_mean_squared_error``/``root_mean_squared_error``/``mean_absolute_error``/``r2_score``), and the
fitted model (``model``) with signature and input example. Only the outermost ``fit`` logs, so a
Pipeline logs once. ``GridSearchCV``/``RandomizedSearchCV`` also log ``best_<param>`` params,
``best_cv_score``, the ``best_estimator`` model, and one child run per candidate (the
``max_tuning_runs`` best by rank, default 5) with its params and cv metrics.

XGBoost: see :mod:`flowml.models.autolog_xgboost` (it shares this module's patching machinery).

Logging failures never break training: they are logged as warnings.
"""

from __future__ import annotations

import contextvars
import importlib.util
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from numbers import Number
from typing import Any

__all__ = ["autolog", "autolog_sklearn", "is_enabled"]

_log = logging.getLogger(__name__)

#: integration -> [(owner, attribute, original)]
_PATCHES: dict[str, list[tuple[Any, str, Any]]] = {}
_CONFIG: dict[str, dict[str, Any]] = {}
#: set while an autologged call is running, so nested fits (Pipeline steps, CV clones) log nothing
_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("flowml_autolog_active", default=False)

_MAX_PARAM_VALUE = 6000
_MAX_KEY = 250


def _patch(integration: str, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    wrapper = make(original)
    wrapper.__wrapped__ = original
    wrapper._flowml_autolog = True
    setattr(owner, name, wrapper)
    _PATCHES.setdefault(integration, []).append((owner, name, original))


def _unpatch(integration: str) -> None:
    for owner, name, original in reversed(_PATCHES.pop(integration, [])):
        setattr(owner, name, original)
    _CONFIG.pop(integration, None)


def is_enabled(integration: str) -> bool:
    return integration in _PATCHES


@contextmanager
def _run(config: dict[str, Any]) -> Iterator[Any]:
    """The active run, or a new one that is ended (FAILED on error) when the block exits."""
    from flowml.tracking import fluent

    active = fluent.active_run()
    if active is not None:
        yield active
        return
    with fluent.start_run(tags={"mlflow.autologging": config["integration"]}) as run:
        yield run


def _str_params(params: dict[str, Any]) -> dict[str, str]:
    return {str(k)[:_MAX_KEY]: str(v)[:_MAX_PARAM_VALUE] for k, v in params.items()}


def _safely(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - autologging must never break the user's training
        _log.warning("flowml autolog: could not log %s: %s", what, exc)
        return None


def _sample(x_data: Any, n: int = 5) -> Any:
    if hasattr(x_data, "iloc"):
        return x_data.iloc[:n]
    if hasattr(x_data, "shape") and hasattr(x_data, "__getitem__"):
        return x_data[:n]
    if isinstance(x_data, list):
        return x_data[:n]
    return None


def _model_extras(
    model: Any, x_data: Any, config: dict[str, Any], predict: Callable[[Any], Any] | None
) -> dict[str, Any]:
    from flowml.models.signature import infer_signature

    sample = _sample(x_data) if x_data is not None else None
    extras: dict[str, Any] = {}
    if sample is None:
        return extras
    if config.get("log_input_examples"):
        extras["input_example"] = sample
    if config.get("log_model_signatures"):
        fn = predict or getattr(model, "predict", None)
        sig = _safely("the model signature", lambda: infer_signature(sample, fn(sample) if fn else None))
        if sig is not None:
            extras["signature"] = sig
    return extras


# -- scikit-learn ------------------------------------------------------------------------------
def _training_metrics(est: Any, x_data: Any, y: Any, sample_weight: Any) -> dict[str, float]:
    import numpy as np
    import sklearn.metrics as skm
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, float] = {}
    if y is None:
        return out
    if hasattr(est, "score"):
        score = _safely("training_score", lambda: est.score(x_data, y, sample_weight=sample_weight))
        if isinstance(score, Number):
            out["training_score"] = float(score)  # type: ignore[arg-type]
    if not hasattr(est, "predict"):
        return out
    y_pred = est.predict(x_data)
    if is_classifier(est):
        binary = len(np.unique(y)) <= 2
        avg = "binary" if binary else "weighted"
        kw = {"sample_weight": sample_weight}
        out["training_precision_score"] = skm.precision_score(y, y_pred, average=avg, zero_division=0, **kw)
        out["training_recall_score"] = skm.recall_score(y, y_pred, average=avg, zero_division=0, **kw)
        out["training_f1_score"] = skm.f1_score(y, y_pred, average=avg, zero_division=0, **kw)
        out["training_accuracy_score"] = skm.accuracy_score(y, y_pred, **kw)
        if hasattr(est, "predict_proba"):
            proba = est.predict_proba(x_data)
            out["training_log_loss"] = skm.log_loss(y, proba, labels=getattr(est, "classes_", None), **kw)
            scores = proba[:, 1] if proba.shape[1] == 2 else proba
            roc = _safely(
                "training_roc_auc",
                lambda: skm.roc_auc_score(y, scores, average="weighted", multi_class="ovo", **kw),
            )
            if roc is not None:
                out["training_roc_auc"] = roc
    elif is_regressor(est):
        mse = skm.mean_squared_error(y, y_pred, sample_weight=sample_weight)
        out["training_mean_squared_error"] = mse
        out["training_root_mean_squared_error"] = float(np.sqrt(mse))
        out["training_mean_absolute_error"] = skm.mean_absolute_error(y, y_pred, sample_weight=sample_weight)
        out["training_r2_score"] = skm.r2_score(y, y_pred, sample_weight=sample_weight)
    return {k: float(v) for k, v in out.items()}


def _log_search(est: Any, run: Any, config: dict[str, Any]) -> None:
    from flowml.tracking import fluent

    rid = run.run_id
    if hasattr(est, "best_params_"):
        fluent.log_params(_str_params({f"best_{k}": v for k, v in est.best_params_.items()}), run_id=rid)
    if isinstance(getattr(est, "best_score_", None), Number):
        fluent.log_metrics({"best_cv_score": float(est.best_score_)}, run_id=rid)
    if config["log_models"] and hasattr(est, "best_estimator_"):
        from flowml.models.flavors.sklearn import log_model

        log_model(est.best_estimator_, name="best_estimator", run_id=rid)
    results = getattr(est, "cv_results_", None)
    if not results:
        return
    n = len(results["params"])
    ranks = next((results[k] for k in results if k.startswith("rank_test")), list(range(1, n + 1)))
    order = sorted(range(n), key=lambda i: (ranks[i], i))
    limit = config.get("max_tuning_runs")
    base = _str_params(est.estimator.get_params(deep=False)) if hasattr(est, "estimator") else {}
    for i in order if limit is None else order[: int(limit)]:
        params = dict(base)
        params.update(_str_params(results["params"][i]))
        metrics = {
            k: float(v[i])
            for k, v in results.items()
            if not k.startswith(("param", "split")) and isinstance(v[i], Number)
        }
        with fluent.start_run(nested=True, tags={"estimator_class": _qualname(est.estimator)}) as child:
            fluent.log_params(params, run_id=child.run_id)
            fluent.log_metrics(metrics, run_id=child.run_id)


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__name__}"


def _sklearn_after_fit(
    est: Any, x_data: Any, y: Any, sample_weight: Any, run: Any, config: dict[str, Any]
) -> None:
    from flowml.tracking import fluent

    metrics = _safely("training metrics", lambda: _training_metrics(est, x_data, y, sample_weight)) or {}
    if metrics:
        _safely("training metrics", lambda: fluent.log_metrics(metrics, run_id=run.run_id))
    if hasattr(est, "cv_results_"):
        _safely("the parameter search", lambda: _log_search(est, run, config))
    if config["log_models"]:
        from flowml.models.flavors.sklearn import log_model

        extras = _model_extras(est, x_data, config, None)
        _safely("the model", lambda: log_model(est, name="model", run_id=run.run_id, **extras))


def _make_sklearn_fit(original: Any) -> Any:
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        config = _CONFIG.get("sklearn")
        if config is None or _ACTIVE.get():
            return original(self, *args, **kwargs)
        token = _ACTIVE.set(True)
        try:
            with _run(config) as run:
                from flowml.tracking import fluent

                params = _safely("params", lambda: _str_params(self.get_params(deep=True)))
                if params:
                    _safely("params", lambda: fluent.log_params(params, run_id=run.run_id))
                _safely(
                    "tags",
                    lambda: fluent.set_tags(
                        {"estimator_name": type(self).__name__, "estimator_class": _qualname(self)}
                    ),
                )
                result = original(self, *args, **kwargs)
                x_data = args[0] if args else kwargs.get("X")
                y = args[1] if len(args) > 1 else kwargs.get("y")
                _sklearn_after_fit(self, x_data, y, kwargs.get("sample_weight"), run, config)
                return result
        finally:
            _ACTIVE.reset(token)

    return fit


def _sklearn_classes() -> list[type]:
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.utils import all_estimators

    classes = [cls for _, cls in all_estimators()] + [Pipeline, GridSearchCV, RandomizedSearchCV]
    return list(dict.fromkeys(classes))


def autolog_sklearn(
    log_input_examples: bool = True,
    log_model_signatures: bool = True,
    log_models: bool = True,
    disable: bool = False,
    max_tuning_runs: int | None = 5,
    silent: bool = False,
    **_ignored: Any,
) -> None:
    """Enable (or with ``disable=True`` remove) scikit-learn autologging."""
    _unpatch("sklearn")
    if disable:
        return
    done: set[tuple[type, str]] = set()
    for cls in _sklearn_classes():
        for name in ("fit", "fit_transform", "fit_predict"):
            # patch where the method is defined (BaseSearchCV.fit serves GridSearchCV), once
            owner = next((base for base in cls.__mro__ if name in base.__dict__), None)
            if owner is None or (owner, name) in done or not owner.__module__.startswith("sklearn."):
                continue
            if callable(owner.__dict__[name]):
                _patch("sklearn", owner, name, _make_sklearn_fit)
                done.add((owner, name))
    _CONFIG["sklearn"] = {
        "integration": "sklearn",
        "log_input_examples": log_input_examples,
        "log_model_signatures": log_model_signatures,
        "log_models": log_models,
        "max_tuning_runs": max_tuning_runs,
        "silent": silent,
    }


def autolog(
    log_input_examples: bool = True,
    log_model_signatures: bool = True,
    log_models: bool = True,
    disable: bool = False,
    silent: bool = False,
    **kwargs: Any,
) -> None:
    """Autolog every supported library that is installed (scikit-learn, XGBoost)."""
    common = {
        "log_input_examples": log_input_examples,
        "log_model_signatures": log_model_signatures,
        "log_models": log_models,
        "disable": disable,
        "silent": silent,
    }
    if importlib.util.find_spec("sklearn") is not None:
        autolog_sklearn(**common, **kwargs)
    if importlib.util.find_spec("xgboost") is not None:
        from flowml.models.autolog_xgboost import autolog_xgboost

        autolog_xgboost(**common)
