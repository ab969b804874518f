"""``flowml.xgboost`` — MLflow's ``mlflow.xgboost``: save/log/load XGBoost models, ``autolog()``."""

from __future__ import annotations

from flowml.models.flavors.xgboost import FLAVOR_NAME, autolog, load_model, log_model, save_model

__all__ = ["FLAVOR_NAME", "autolog", "load_model", "log_model", "save_model"]
