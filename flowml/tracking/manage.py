"""MLflow's fluent management calls: deleting and restoring experiments and runs, a run's parent, and
the experiment / registry searches that page through every result (``mlflow.search_experiments``,
``mlflow.search_registered_models``, ``mlflow.search_model_versions``).

Each is a thin call on the client the fluent API uses (``FLOWML_TRACKING_URI``), with MLflow's
signatures and defaults.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from flowml.entities import Experiment, PagedList, Run, ViewType
from flowml.entities_registry import ModelVersion, RegisteredModel
from flowml.tracking.fluent import _active_experiment_id, _client, flush

__all__ = [
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
]

T = TypeVar("T")

#: The run tag naming a nested run's parent.
PARENT_RUN_ID_TAG = "mlflow.parentRunId"

# Page sizes MLflow's fluent searches ask for.
_EXPERIMENTS_PAGE, _MODELS_PAGE, _VERSIONS_PAGE = 1000, 100, 10_000


def _all_pages(
    fetch: Callable[[int, str | None], PagedList[T]], page_size: int, max_results: int | None
) -> list[T]:
    """Every result (``max_results=None``) or the first ``max_results``, page by page."""
    found: list[T] = []
    token: str | None = None
    while max_results is None or len(found) < max_results:
        want = page_size if max_results is None else min(page_size, max_results - len(found))
        page = fetch(want, token)
        found.extend(page)
        token = page.token
        if not token:
            break
    return found


def is_tracking_uri_set() -> bool:
    """Whether a tracking URI was set (``set_tracking_uri`` or ``FLOWML_TRACKING_URI`` /
    ``MLFLOW_TRACKING_URI``), rather than the default store in the current directory."""
    return bool(os.environ.get("FLOWML_TRACKING_URI") or os.environ.get("MLFLOW_TRACKING_URI"))


def flush_async_logging() -> None:
    """MLflow's name for writing buffered metrics now (:func:`flowml.flush`)."""
    flush()


def delete_experiment(experiment_id: str) -> None:
    _client().delete_experiment(experiment_id)


def restore_experiment(experiment_id: str) -> None:
    _client().restore_experiment(experiment_id)


def delete_experiment_tag(key: str) -> None:
    """Delete a tag of the active experiment."""
    client = _client()
    client.delete_experiment_tag(_active_experiment_id(client), key)


def delete_run(run_id: str) -> None:
    _client().delete_run(run_id)


def restore_run(run_id: str) -> None:
    _client().restore_run(run_id)


def get_parent_run(run_id: str) -> Run | None:
    """The parent of nested run ``run_id``, or ``None`` when it has none."""
    client = _client()
    parent = client.get_run(run_id).data.tags.get(PARENT_RUN_ID_TAG)
    return client.get_run(parent) if parent else None


def search_experiments(
    view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
) -> list[Experiment]:
    """Experiments matching ``filter_string`` (all of them when ``max_results`` is ``None``)."""
    client = _client()
    return _all_pages(
        lambda n, token: client.search_experiments(view_type, n, filter_string, order_by, token),
        _EXPERIMENTS_PAGE,
        max_results,
    )


def search_registered_models(
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
) -> list[RegisteredModel]:
    client = _client()
    return _all_pages(
        lambda n, token: client.search_registered_models(filter_string, n, order_by, token),
        _MODELS_PAGE,
        max_results,
    )


def search_model_versions(
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
) -> list[ModelVersion]:
    client = _client()
    return _all_pages(
        lambda n, token: client.search_model_versions(filter_string, n, order_by, token),
        _VERSIONS_PAGE,
        max_results,
    )


def set_model_version_tag(
    name: str,
    version: str | int | None = None,
    key: str | None = None,
    value: Any = None,
    stage: str | None = None,
) -> None:
    """Tag a model version, named by ``version`` or (MLflow's deprecated form) the latest in ``stage``."""
    _client().set_model_version_tag(name, version, key, value, stage)
