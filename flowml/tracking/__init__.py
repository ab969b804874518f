"""The fluent tracking API; the public names are re-exported by :mod:`flowml`.

``flowml.tracking.MlflowClient`` is the client under the name MLflow also gives it
(``mlflow.tracking.MlflowClient``), resolved on first use so ``import flowml`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MlflowClient"]


def __getattr__(name: str) -> Any:
    if name == "MlflowClient":
        from flowml.client import FlowmlClient

        return FlowmlClient
    raise AttributeError(f"module 'flowml.tracking' has no attribute {name!r}")
