"""Custom PythonModels for the batching tests (importable by served processes via PYTHONPATH)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from flowml.pyfunc import PythonModel

#: a row with f0 == POISON makes RowScore.predict raise (an error only predict() can find)
POISON = -999.0


class RowScore(PythonModel):
    """One value per row, ``f0 * 1000 + f1 * scale`` (elementwise: equal bits batched or not).

    ``model_config["output"]`` picks the output type: ``ndarray`` (default), ``series``, ``frame``,
    ``list``, ``dict`` (not row-aligned: columnar), ``summary`` (not row-aligned: one value per call);
    ``model_config["delay"]`` seconds are slept per call (a slow model).
    """

    def __init__(self) -> None:
        self.output = "ndarray"
        self.delay = 0.0

    def load_context(self, context: Any) -> None:
        self.output = str(context.model_config.get("output", "ndarray"))
        self.delay = float(context.model_config.get("delay", 0.0))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        if (model_input["f0"] == POISON).any():
            raise ValueError("poisoned row")
        if self.delay:
            time.sleep(self.delay)
        scale = float((params or {}).get("scale", 1.0))
        values = model_input["f0"].to_numpy() * 1000.0 + model_input["f1"].to_numpy() * scale
        if self.output == "series":
            return pd.Series(values, name="score")
        if self.output == "frame":
            return pd.DataFrame({"score": values, "twice": values * 2})
        if self.output == "list":
            return values.tolist()
        if self.output == "dict":
            return {"score": values}
        if self.output == "summary":
            return [float(np.mean(values))]
        return values
