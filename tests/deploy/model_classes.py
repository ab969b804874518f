"""Models for deployment tests (pickled by reference: the test env puts the repo on PYTHONPATH)."""

from __future__ import annotations

from typing import Any

import flowml.pyfunc


class Broken(flowml.pyfunc.PythonModel):
    """Loads fine, fails on every prediction (so its smoke test fails)."""

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        raise RuntimeError("this model is broken on purpose")
