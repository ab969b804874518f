"""The one tracking-backend interface every client implementation satisfies.

:class:`flowml.client.FlowmlClient` is the public, MlflowClient-shaped facade; it turns user
arguments into calls on a :class:`TrackingBackend`: the SQL store in-process
(:mod:`flowml.client.local`) or a flowml/MLflow server over HTTP (the REST backend).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence

from flowml.client._logged_models_backend import LoggedModelBackend
from flowml.client._registry_backend import RegistryBackend
from flowml.entities import (
    DatasetInput,
    Experiment,
    Metric,
    ModelMetric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunTag,
    ViewType,
)

__all__ = ["TrackingBackend"]


class TrackingBackend(RegistryBackend, ABC):
    """Store operations with MLflow's semantics (tracking here, the registry in
    :class:`RegistryBackend`); errors are :class:`flowml.exceptions.FlowmlError`."""

    #: Where new experiments put their artifacts unless told otherwise.
    artifact_root: str
    #: MLflow 3 logged models (``log_model`` creates one per model).
    logged_models: LoggedModelBackend

    # experiments
    @abstractmethod
    def create_experiment(
        self, name: str, artifact_location: str | None, tags: Mapping[str, str] | None
    ) -> str: ...

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    @abstractmethod
    def search_experiments(
        self,
        view_type: ViewType,
        max_results: int,
        filter_string: str | None,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[Experiment]: ...

    @abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str) -> None: ...

    @abstractmethod
    def delete_experiment(self, experiment_id: str) -> None: ...

    @abstractmethod
    def restore_experiment(self, experiment_id: str) -> None: ...

    @abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...

    @abstractmethod
    def delete_experiment_tag(self, experiment_id: str, key: str) -> None: ...

    # runs
    @abstractmethod
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int | None,
        tags: Mapping[str, str],
        run_name: str | None,
    ) -> Run: ...

    @abstractmethod
    def get_run(self, run_id: str) -> Run: ...

    @abstractmethod
    def update_run_info(
        self, run_id: str, status: str | None, end_time: int | None, run_name: str | None
    ) -> RunInfo: ...

    @abstractmethod
    def delete_run(self, run_id: str) -> None: ...

    @abstractmethod
    def restore_run(self, run_id: str) -> None: ...

    @abstractmethod
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric],
        params: Sequence[Param],
        tags: Sequence[RunTag],
        model_points: Sequence[ModelMetric] = (),
    ) -> None:
        """Write the run's metrics, params and tags; ``model_points`` repeat some of ``metrics`` as
        metrics of logged models (MLflow 3)."""

    @abstractmethod
    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput], model_ids: Sequence[str] = ()) -> None:
        """Datasets and logged models the run used (MLflow's ``log-inputs``; read as ``Run.inputs``)."""

    @abstractmethod
    def delete_tag(self, run_id: str, key: str) -> None: ...

    @abstractmethod
    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None, page_token: str | None
    ) -> PagedList[Metric]: ...

    @abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        run_view_type: ViewType,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[Run]: ...

    # artifact bookkeeping (the bytes go through flowml.artifacts)
    @abstractmethod
    def record_artifact_files(self, run_id: str, records: Iterable[tuple[str, int, str]]) -> None: ...

    @abstractmethod
    def list_artifact_files(self, run_id: str) -> dict[str, tuple[int, str]]: ...

    @abstractmethod
    def close(self) -> None:
        """Release connections and pools held by the backend."""
