"""flowml's model format: MLflow's ``MLmodel`` directories (pyfunc + sklearn/xgboost flavors).

Public faces: :mod:`flowml.pyfunc`, :mod:`flowml.sklearn`, :mod:`flowml.xgboost`. This package holds
the format itself (no heavy imports at module level: sklearn/xgboost/pandas/numpy/cloudpickle/yaml
are imported inside the functions that need them).
"""

from __future__ import annotations

from typing import Any

from flowml.models.integrity import ModelIntegrityError
from flowml.models.mlmodel import Model, ModelInfo
from flowml.models.signature import (
    ColSpec,
    ModelSignature,
    ParamSchema,
    ParamSpec,
    Schema,
    TensorSpec,
    infer_signature,
)
from flowml.models.uri import resolve_model_uri

__all__ = [
    "ColSpec",
    "Model",
    "ModelInfo",
    "ModelIntegrityError",
    "ModelSignature",
    "ParamSchema",
    "ParamSpec",
    "Schema",
    "TensorSpec",
    "get_model_info",
    "infer_signature",
    "resolve_model_uri",
    "validate_serving_input",
]


def validate_serving_input(model_uri: str, serving_input: Any) -> Any:
    """Score an MLflow JSON serving payload with the model at ``model_uri`` (MLflow's helper)."""
    from flowml.models.pyfunc import validate_serving_input as _validate

    return _validate(model_uri, serving_input)


def get_model_info(model_uri: str) -> Model:
    """The integrity-checked ``MLmodel`` of ``model_uri``; nothing is deserialised."""
    from flowml.models.pyfunc import get_model_info as _info

    return _info(model_uri)
