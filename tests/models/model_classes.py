"""Custom PythonModel classes importable by both flowml and mlflow (pickled by reference)."""

from __future__ import annotations

from typing import Any

import flowml.pyfunc


class AddN(flowml.pyfunc.PythonModel):
    """Adds ``n`` (or the ``k`` param) to every value."""

    def __init__(self, n: float) -> None:
        self.n = n

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        k = (params or {}).get("k", 0)
        return model_input.select_dtypes("number") + self.n + k


class NoContext(flowml.pyfunc.PythonModel):
    """MLflow >= 2.20 style: predict without a context."""

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:  # type: ignore[override]
        return model_input * 2


class WithArtifact(flowml.pyfunc.PythonModel):
    """Reads a number from an artifact file at load time."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts["offset"]) as fh:
            self.offset = float(fh.read())

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return model_input + self.offset
