"""A custom model written against MLflow's own PythonModel (importable, so it pickles by reference)."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc


class MlflowAddN(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    def __init__(self, n: float) -> None:
        self.n = n

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return model_input + self.n
