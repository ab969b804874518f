"""``flowml.pyfunc`` — MLflow's ``mlflow.pyfunc``: custom models and loading any flavor as a pyfunc."""

from __future__ import annotations

from flowml.models.pyfunc import (
    FLAVOR_NAME,
    PyFuncModel,
    PythonModel,
    PythonModelContext,
    get_model_info,
    load_model,
    log_model,
    save_model,
    validate_serving_input,
)

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
