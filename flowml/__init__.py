"""flowml: MLflow's tracking, models and registry as a Prefect-native platform.

``import flowml as mlflow`` gives MLflow's fluent API. Everything is imported lazily on first
attribute access, so ``import flowml`` stays fast (no SQLAlchemy, pandas, Prefect or BentoML).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        (
            "ActiveRun",
            "active_run",
            "create_experiment",
            "delete_tag",
            "end_run",
            "flush",
            "get_experiment",
            "get_experiment_by_name",
            "get_registry_uri",
            "get_run",
            "get_tracking_uri",
            "last_active_run",
            "log_metric",
            "log_metrics",
            "log_param",
            "log_params",
            "set_experiment",
            "set_experiment_tag",
            "set_experiment_tags",
            "set_registry_uri",
            "set_tag",
            "set_tags",
            "set_tracking_uri",
            "start_run",
        ),
        "flowml.tracking.fluent",
    ),
    **dict.fromkeys(
        (
            "get_artifact_uri",
            "log_artifact",
            "log_artifacts",
            "log_dict",
            "log_figure",
            "log_input",
            "log_inputs",
            "log_text",
            "search_runs",
        ),
        "flowml.tracking.io",
    ),
    "autolog": "flowml.models.autolog",
    "register_model": "flowml.registry.fluent",
    **dict.fromkeys(("flow", "sweep", "task"), "flowml.orchestration"),
    "FlowmlClient": "flowml.client",
    "MlflowClient": "flowml.client",
}
_ALIASES = {"MlflowClient": "FlowmlClient"}
_SUBMODULES = (
    "client",
    "data",
    "entities",
    "exceptions",
    "models",
    "orchestration",
    "projects",
    "pyfunc",
    "registry",
    "settings",
    "sklearn",
    "tracking",
    "validation",
    "xgboost",
)

__all__ = [
    "ActiveRun",
    "FlowmlClient",
    "MlflowClient",
    "__version__",
    "active_run",
    "autolog",
    "client",
    "create_experiment",
    "data",
    "delete_tag",
    "end_run",
    "entities",
    "exceptions",
    "flow",
    "flush",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_registry_uri",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_input",
    "log_inputs",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "models",
    "orchestration",
    "projects",
    "pyfunc",
    "register_model",
    "registry",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_registry_uri",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "settings",
    "sklearn",
    "start_run",
    "sweep",
    "task",
    "tracking",
    "validation",
    "xgboost",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), _ALIASES.get(name, name))
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"flowml.{name}")
    raise AttributeError(f"module 'flowml' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from flowml import (
        client,
        data,
        entities,
        exceptions,
        models,
        orchestration,
        projects,
        pyfunc,
        registry,
        settings,
        sklearn,
        validation,
        xgboost,
    )
    from flowml.client import FlowmlClient
    from flowml.client import FlowmlClient as MlflowClient
    from flowml.models.autolog import autolog
    from flowml.orchestration import flow, sweep, task
    from flowml.registry.fluent import register_model
    from flowml.tracking.fluent import (
        ActiveRun,
        active_run,
        create_experiment,
        delete_tag,
        end_run,
        flush,
        get_experiment,
        get_experiment_by_name,
        get_run,
        get_tracking_uri,
        last_active_run,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        set_experiment,
        set_experiment_tag,
        set_experiment_tags,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )
    from flowml.tracking.io import (
        get_artifact_uri,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_input,
        log_inputs,
        log_text,
        search_runs,
    )
