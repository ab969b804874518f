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
            "log_image",
            "log_input",
            "log_inputs",
            "log_table",
            "log_text",
            "load_table",
            "search_runs",
        ),
        "flowml.tracking.io",
    ),
    **dict.fromkeys(
        (
            "delete_experiment",
            "delete_experiment_tag",
            "delete_run",
            "flush_async_logging",
            "get_parent_run",
            "is_tracking_uri_set",
            "restore_experiment",
            "restore_run",
            "search_experiments",
            "search_model_versions",
            "search_registered_models",
            "set_model_version_tag",
        ),
        "flowml.tracking.manage",
    ),
    **dict.fromkeys(
        (
            "ActiveModel",
            "clear_active_model",
            "create_external_model",
            "delete_logged_model_tag",
            "finalize_logged_model",
            "get_active_model_id",
            "get_logged_model",
            "initialize_logged_model",
            "last_logged_model",
            "log_model_params",
            "search_logged_models",
            "set_active_model",
            "set_logged_model_tags",
        ),
        "flowml.tracking.logged_models",
    ),
    "Image": "flowml.tracking.images",
    "MlflowException": "flowml.exceptions",
    "run": "flowml.projects",
    "autolog": "flowml.models.autolog",
    "register_model": "flowml.registry.fluent",
    **dict.fromkeys(("flow", "sweep", "task"), "flowml.orchestration"),
    "FlowmlClient": "flowml.client",
    "MlflowClient": "flowml.client",
}
_ALIASES = {"MlflowClient": "FlowmlClient"}
_SUBMODULES = (
    "artifacts",
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
    "ActiveModel",
    "ActiveRun",
    "FlowmlClient",
    "Image",
    "MlflowClient",
    "MlflowException",
    "__version__",
    "active_run",
    "artifacts",
    "autolog",
    "clear_active_model",
    "client",
    "create_experiment",
    "create_external_model",
    "data",
    "delete_experiment",
    "delete_experiment_tag",
    "delete_logged_model_tag",
    "delete_run",
    "delete_tag",
    "end_run",
    "entities",
    "exceptions",
    "finalize_logged_model",
    "flow",
    "flush",
    "flush_async_logging",
    "get_active_model_id",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_logged_model",
    "get_parent_run",
    "get_registry_uri",
    "get_run",
    "get_tracking_uri",
    "initialize_logged_model",
    "is_tracking_uri_set",
    "last_active_run",
    "last_logged_model",
    "load_table",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_inputs",
    "log_metric",
    "log_metrics",
    "log_model_params",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "models",
    "orchestration",
    "projects",
    "pyfunc",
    "register_model",
    "registry",
    "restore_experiment",
    "restore_run",
    "run",
    "search_experiments",
    "search_logged_models",
    "search_model_versions",
    "search_registered_models",
    "search_runs",
    "set_active_model",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_logged_model_tags",
    "set_model_version_tag",
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
        artifacts,
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
    from flowml.exceptions import MlflowException
    from flowml.models.autolog import autolog
    from flowml.orchestration.decorators import flow, task
    from flowml.orchestration.sweep import sweep
    from flowml.projects import run
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
    from flowml.tracking.images import Image
    from flowml.tracking.io import (
        get_artifact_uri,
        load_table,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_image,
        log_input,
        log_inputs,
        log_table,
        log_text,
        search_runs,
    )
    from flowml.tracking.logged_models import (
        ActiveModel,
        clear_active_model,
        create_external_model,
        delete_logged_model_tag,
        finalize_logged_model,
        get_active_model_id,
        get_logged_model,
        initialize_logged_model,
        last_logged_model,
        log_model_params,
        search_logged_models,
        set_active_model,
        set_logged_model_tags,
    )
    from flowml.tracking.manage import (
        delete_experiment,
        delete_experiment_tag,
        delete_run,
        flush_async_logging,
        get_parent_run,
        is_tracking_uri_set,
        restore_experiment,
        restore_run,
        search_experiments,
        search_model_versions,
        search_registered_models,
        set_model_version_tag,
    )
