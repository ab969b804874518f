"""XGBoost autologging: ``xgboost.train`` and the scikit-learn API ``fit`` (reversible patches).

Logs params (``num_boost_round`` and the booster params, or ``get_params()``), each eval set's metrics
at every iteration (``train-logloss``, ``validation_0-logloss``... with step = iteration) and the model
(XGBoost's own format) with signature and input example for the scikit-learn API. The sklearn-API
``fit`` logs one run: its inner ``xgboost.train`` only adds the per-iteration metrics callback.
"""

from __future__ import annotations

import contextvars
from typing import Any

from flowml.models.autolog import (
    _ACTIVE,
    _CONFIG,
    _model_extras,
    _patch,
    _run,
    _safely,
    _str_params,
    _unpatch,
)

__all__ = ["autolog_xgboost"]

#: set by the XGBoost sklearn-API fit so the inner ``train`` only adds the metrics callback
_XGB_INNER: contextvars.ContextVar[bool] = contextvars.ContextVar("flowml_autolog_xgb_inner", default=False)


def _metrics_callback(run_id: str) -> Any:
    import xgboost as xgb

    from flowml.tracking import fluent

    class _LogEvals(xgb.callback.TrainingCallback):  # type: ignore[misc]
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            values = {
                f"{data}-{metric}": float(series[-1] if not isinstance(series[-1], tuple) else series[-1][0])
                for data, metrics in evals_log.items()
                for metric, series in metrics.items()
                if series
            }
            if values:
                _safely("eval metrics", lambda: fluent.log_metrics(values, step=epoch, run_id=run_id))
            return False

    return _LogEvals()


def _with_callback(kwargs: dict[str, Any], run_id: str) -> dict[str, Any]:
    callbacks = list(kwargs.get("callbacks") or [])
    callbacks.append(_metrics_callback(run_id))
    return {**kwargs, "callbacks": callbacks}


def _make_xgb_train(original: Any) -> Any:
    def train(params: Any, dtrain: Any, *args: Any, **kwargs: Any) -> Any:
        config = _CONFIG.get("xgboost")
        if config is None:
            return original(params, dtrain, *args, **kwargs)
        from flowml.tracking import fluent

        if _XGB_INNER.get():  # inside an autologged XGBModel.fit: only the per-iteration metrics
            active = fluent.active_run()
            if active is None:
                return original(params, dtrain, *args, **kwargs)
            return original(params, dtrain, *args, **_with_callback(kwargs, active.run_id))
        if _ACTIVE.get():
            return original(params, dtrain, *args, **kwargs)
        token = _ACTIVE.set(True)
        try:
            with _run(config) as run:
                logged = dict(params or {})
                logged["num_boost_round"] = args[0] if args else kwargs.get("num_boost_round", 10)
                for key in ("early_stopping_rounds", "maximize", "verbose_eval"):
                    if key in kwargs:
                        logged[key] = kwargs[key]
                _safely("params", lambda: fluent.log_params(_str_params(logged), run_id=run.run_id))
                booster = original(params, dtrain, *args, **_with_callback(kwargs, run.run_id))
                if getattr(booster, "best_iteration", None) is not None and "early_stopping_rounds" in kwargs:
                    _safely(
                        "best_iteration",
                        lambda: fluent.log_metrics(
                            {"best_iteration": float(booster.best_iteration)}, run_id=run.run_id
                        ),
                    )
                if config["log_models"]:
                    from flowml.models.flavors.xgboost import log_model

                    _safely("the model", lambda: log_model(booster, name="model", run_id=run.run_id))
                return booster
        finally:
            _ACTIVE.reset(token)

    return train


def _make_xgb_fit(original: Any) -> Any:
    def fit(self: Any, x_data: Any, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        config = _CONFIG.get("xgboost")
        if config is None or _ACTIVE.get():
            return original(self, x_data, y, *args, **kwargs)
        from flowml.tracking import fluent

        token, inner = _ACTIVE.set(True), _XGB_INNER.set(True)
        try:
            with _run(config) as run:
                params = _safely("params", lambda: _str_params(self.get_params(deep=True)))
                if params:
                    _safely("params", lambda: fluent.log_params(params, run_id=run.run_id))
                result = original(self, x_data, y, *args, **kwargs)
                if config["log_models"]:
                    from flowml.models.flavors.xgboost import log_model

                    extras = _model_extras(self, x_data, config, None)
                    _safely("the model", lambda: log_model(self, name="model", run_id=run.run_id, **extras))
                return result
        finally:
            _XGB_INNER.reset(inner)
            _ACTIVE.reset(token)

    return fit


def autolog_xgboost(
    log_input_examples: bool = True,
    log_model_signatures: bool = True,
    log_models: bool = True,
    disable: bool = False,
    silent: bool = False,
    **_ignored: Any,
) -> None:
    """Enable (or with ``disable=True`` remove) XGBoost autologging."""
    _unpatch("xgboost")
    if disable:
        return
    import xgboost
    import xgboost.sklearn

    _patch("xgboost", xgboost, "train", _make_xgb_train)
    _patch("xgboost", xgboost.sklearn, "train", _make_xgb_train)
    for cls in {
        xgboost.XGBModel,
        *(
            c
            for c in vars(xgboost.sklearn).values()
            if isinstance(c, type) and issubclass(c, xgboost.XGBModel)
        ),
    }:
        if "fit" in cls.__dict__:
            _patch("xgboost", cls, "fit", _make_xgb_fit)
    _CONFIG["xgboost"] = {
        "integration": "xgboost",
        "log_input_examples": log_input_examples,
        "log_model_signatures": log_model_signatures,
        "log_models": log_models,
        "silent": silent,
    }
