"""Custom Python models for the ``python_function`` flavor: :class:`PythonModel` (what users subclass),
the context it is loaded with, and reading its cloudpickled instance back (``python_model.pkl``).

:mod:`flowml.models.pyfunc` saves, logs and loads them (and re-exports these names, as ``mlflow.pyfunc``
does).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

from flowml.exceptions import InvalidParameterValue
from flowml.models.integrity import check_deserialization_allowed

__all__ = ["PYTHON_MODEL_FILE", "PythonModel", "PythonModelContext"]

PYTHON_MODEL_FILE = "python_model.pkl"


class PythonModelContext:
    """What ``load_context``/``predict`` get: ``artifacts`` (name → local path) and ``model_config``."""

    def __init__(
        self, artifacts: Mapping[str, str] | None = None, model_config: Mapping[str, Any] | None = None
    ):
        self._artifacts = dict(artifacts or {})
        self._model_config = dict(model_config or {})

    @property
    def artifacts(self) -> dict[str, str]:
        return self._artifacts

    @property
    def model_config(self) -> dict[str, Any]:
        return self._model_config


class _NoTypeHints:
    """MLflow's pyfunc wrapper reads ``predict_type_hints``; flowml models declare none."""

    input = None
    output = None


class PythonModel:
    """Subclass and implement ``predict(self, context, model_input, params=None)``.

    Since MLflow 2.20 ``predict(self, model_input, params=None)`` (no context) is accepted as well.
    ``load_context(self, context)`` runs once when the model is loaded.
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Load artifacts (``context.artifacts``) once, at load time."""

    def predict(self, context: Any, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError("PythonModel subclasses must implement predict()")

    @property
    def predict_type_hints(self) -> Any:
        return _NoTypeHints()


def _call_predict(
    python_model: Any, context: PythonModelContext, data: Any, params: dict[str, Any] | None
) -> Any:
    parameters = inspect.signature(python_model.predict).parameters
    kwargs = {"params": params} if "params" in parameters else {}
    # MLflow's rule: ``context`` by name, or exactly two arguments besides self/params
    with_context = "context" in parameters or len([p for p in parameters if p not in ("self", "params")]) == 2
    if with_context:
        return python_model.predict(context, data, **kwargs)
    return python_model.predict(data, **kwargs)


class _PythonModelWrapper:
    def __init__(self, python_model: Any, context: PythonModelContext) -> None:
        self.python_model = python_model
        self.context = context

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return _call_predict(self.python_model, self.context, data, params)

    def get_raw_model(self) -> Any:
        return self.python_model


def _load_python_model(path: str, conf: Mapping[str, Any]) -> Any:
    check_deserialization_allowed("a custom python model (cloudpickle)")
    import cloudpickle

    pickle_path = os.path.join(path, conf.get("python_model", PYTHON_MODEL_FILE))
    compression = conf.get("python_model_compression")
    if compression:
        import bz2
        import gzip
        import lzma

        openers: dict[str, Callable[..., Any]] = {"gzip": gzip.open, "lzma": lzma.open, "bz2": bz2.open}
        opener = openers.get(str(compression))
        if opener is None:
            raise InvalidParameterValue(f"Unsupported python_model_compression {compression!r}")
        with opener(pickle_path, "rb") as fh:
            return cloudpickle.load(fh)
    with open(pickle_path, "rb") as fh:
        return cloudpickle.load(fh)
