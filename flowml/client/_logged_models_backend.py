"""The logged-models part of the backend interface (MLflow 3 ``LoggedModel`` store operations).

Every :class:`flowml.client.base.TrackingBackend` carries one as ``backend.logged_models``:
:class:`flowml.client.local.SqlLoggedModels` (the SQL store) and
:class:`flowml.client._rest_logged_models.RestLoggedModels` (MLflow's ``/logged-models`` routes).
``order_by`` entries are filter-grammar strings or MLflow's dicts (``field_name``, ``ascending``,
``dataset_name``, ``dataset_digest``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from flowml.entities import LoggedModel, ModelMetric, PagedList

__all__ = ["LoggedModelBackend", "ModelOrderSpec"]

#: One ``order_by`` entry: ``"name ASC"`` or ``{"field_name": "metrics.acc", "ascending": False}``.
ModelOrderSpec = str | Mapping[str, Any]


class LoggedModelBackend(ABC):
    @abstractmethod
    def create(
        self,
        experiment_id: str,
        name: str | None,
        source_run_id: str | None,
        tags: Mapping[str, str],
        params: Mapping[str, str],
        model_type: str | None,
    ) -> LoggedModel:
        """A new logged model, PENDING, at ``<experiment location>/models/<model_id>/artifacts``."""

    @abstractmethod
    def get(self, model_id: str) -> LoggedModel: ...

    @abstractmethod
    def finalize(self, model_id: str, status: str) -> LoggedModel:
        """``status``: ``READY``/``FAILED`` (MLflow's names) or the protobuf names."""

    @abstractmethod
    def delete(self, model_id: str) -> None: ...

    @abstractmethod
    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> None: ...

    @abstractmethod
    def delete_tag(self, model_id: str, key: str) -> None: ...

    @abstractmethod
    def log_params(self, model_id: str, params: Mapping[str, str]) -> None: ...

    @abstractmethod
    def log_outputs(self, run_id: str, models: Sequence[tuple[str, int]]) -> None:
        """Record ``(model_id, step)`` pairs as the run's outputs (``run.outputs.model_outputs``)."""

    @abstractmethod
    def log_metrics(self, run_id: str, points: Sequence[ModelMetric]) -> None:
        """Metric points of logged models, logged by run ``run_id`` (they are the run's metrics too)."""

    @abstractmethod
    def search(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        max_results: int | None,
        order_by: Sequence[ModelOrderSpec] | None,
        page_token: str | None,
        datasets: Sequence[Mapping[str, str]] | None = None,
    ) -> PagedList[LoggedModel]: ...
