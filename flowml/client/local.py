"""The in-process backend: the SQL store (SQLite or PostgreSQL) through :mod:`flowml.store`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flowml.client._local_registry import SqlRegistryMixin
from flowml.client._logged_models_backend import LoggedModelBackend, ModelOrderSpec
from flowml.client.base import TrackingBackend
from flowml.entities import (
    DatasetInput,
    Experiment,
    LoggedModel,
    Metric,
    ModelMetric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunLinks,
    RunTag,
    ViewType,
)
from flowml.exceptions import InvalidParameterValue
from flowml.store import Database, logged_models, run_data, run_inputs, tracking
from flowml.store._pg_loop import LoopPointWriter
from flowml.store.group_commit import GroupCommit

#: The most rows the server writes on its event loop in one group (SQLite: ~4 µs a row here, so
#: the loop pauses for at most ~10 ms; PostgreSQL: the loop builds the group's statements, the
#: backend writes); a heavier group is written by the background leader.
INLINE_MAX_ROWS = 2_500

__all__ = ["SqlBackend", "SqlLoggedModels"]


class SqlBackend(SqlRegistryMixin, TrackingBackend):
    """Each call is one read or one write transaction on :class:`flowml.store.Database`."""

    def __init__(self, uri: str, artifact_root: str, *, busy_timeout_ms: int = 30_000) -> None:
        self.artifact_root = artifact_root
        self.db = Database(uri, artifact_root, busy_timeout_ms=busy_timeout_ms)
        # PostgreSQL: the server's metric-only groups go out on its event loop's own connection.
        self._loop_points = LoopPointWriter(self.db.uri) if self.db.dialect == "postgresql" else None
        self._batches: GroupCommit[run_data.PreparedBatch] = GroupCommit(
            self.db,
            run_data.write_batches,
            inline_weight=run_data.batch_weight,
            inline_max=INLINE_MAX_ROWS,
            loop_writer=self._write_on_loop if self._loop_points is not None else None,
            loop_accepts=run_data.points_only,
        )
        self.logged_models: SqlLoggedModels = SqlLoggedModels(self.db)

    # experiments
    def create_experiment(
        self, name: str, artifact_location: str | None, tags: Mapping[str, str] | None
    ) -> str:
        return self.db.write(
            lambda s: tracking.create_experiment(s, name, self.artifact_root, artifact_location, tags)
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self.db.read() as s:
            return tracking.get_experiment(s, experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self.db.read() as s:
            return tracking.get_experiment_by_name(s, name)

    def search_experiments(
        self,
        view_type: ViewType,
        max_results: int,
        filter_string: str | None,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[Experiment]:
        with self.db.read() as s:
            return tracking.search_experiments(s, view_type, max_results, filter_string, order_by, page_token)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self.db.write(lambda s: tracking.rename_experiment(s, experiment_id, new_name))

    def delete_experiment(self, experiment_id: str) -> None:
        self.db.write(lambda s: tracking.delete_experiment(s, experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self.db.write(lambda s: tracking.restore_experiment(s, experiment_id))

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self.db.write(lambda s: tracking.set_experiment_tag(s, experiment_id, key, value))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self.db.write(lambda s: tracking.delete_experiment_tag(s, experiment_id, key))

    # runs
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int | None,
        tags: Mapping[str, str],
        run_name: str | None,
    ) -> Run:
        return self.db.write(
            lambda s: tracking.create_run(s, experiment_id, user_id, start_time, tags, run_name)
        )

    def get_run(self, run_id: str) -> Run:
        with self.db.read() as s:
            runs = [tracking.get_run(s, run_id)]
            run_inputs.with_links(s, runs)
        return runs[0]

    def get_run_info(self, run_id: str) -> RunInfo:
        """The run's info alone, in one primary-key read (the server's permission and artifact checks)."""
        with self.db.read() as s:
            return tracking.get_run_info(s, run_id)

    def log_inputs(self, run_id: str, inputs: Sequence[DatasetInput], model_ids: Sequence[str] = ()) -> None:
        """Datasets and logged models the run used (MLflow's ``log-inputs``; ``Run.inputs``)."""
        self.db.write(lambda s: run_inputs.log_inputs(s, run_id, inputs, model_ids))

    def run_links(self, run_ids: Sequence[str], *, model_inputs: bool = True) -> dict[str, RunLinks]:
        """Each run's inputs and outputs (only runs that have any), in one read; ``model_inputs=False``
        leaves out the logged models used (MLflow's run search does)."""
        with self.db.read() as s:
            return run_inputs.load_links(s, run_ids, model_inputs=model_inputs)

    def update_run_info(
        self, run_id: str, status: str | None, end_time: int | None, run_name: str | None
    ) -> RunInfo:
        return self.db.write(lambda s: tracking.update_run_info(s, run_id, status, end_time, run_name))

    def delete_run(self, run_id: str) -> None:
        self.db.write(lambda s: tracking.delete_run(s, run_id))

    def restore_run(self, run_id: str) -> None:
        self.db.write(lambda s: tracking.restore_run(s, run_id))

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric],
        params: Sequence[Param],
        tags: Sequence[RunTag],
        model_points: Sequence[ModelMetric] = (),
    ) -> None:
        """``model_points`` (server only: MLflow 3 points sent with a ``model_id``) repeat some of
        ``metrics`` as metrics of logged models."""
        self._batches.submit(run_data.prepare_batch(run_id, metrics, params, tags, model_points))

    async def _write_on_loop(
        self, batches: Sequence[run_data.PreparedBatch]
    ) -> Sequence[BaseException | None] | None:
        assert self._loop_points is not None
        return await run_data.write_points_on_loop(self._loop_points, batches)

    async def aclose(self) -> None:
        """Close what the server's event loop opened (its PostgreSQL connection for metric points)."""
        if self._loop_points is not None:
            await self._loop_points.aclose()

    async def log_prepared_batch(self, batch: run_data.PreparedBatch) -> None:
        """``log_batch`` of an already validated batch, awaited on the caller's event loop (the server's
        hot path: concurrent requests are written in one group transaction)."""
        await self._batches.submit_async(batch)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.db.write(lambda s: run_data.delete_tag(s, run_id, key))

    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None, page_token: str | None
    ) -> PagedList[Metric]:
        with self.db.read() as s:
            return run_data.get_metric_history(s, run_id, key, max_results, page_token)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        run_view_type: ViewType,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[Run]:
        with self.db.read() as s:
            page = tracking.search_runs(
                s, experiment_ids, filter_string, run_view_type, max_results, order_by, page_token,
                self.db.side_reader,
            )  # fmt: skip
            run_inputs.with_links(s, page, model_inputs=False)  # MLflow's search leaves model inputs out
        return page

    def record_artifact_files(self, run_id: str, records: Iterable[tuple[str, int, str]]) -> None:
        rows = list(records)
        self.db.write(lambda s: run_data.record_artifact_files(s, run_id, rows))

    def list_artifact_files(self, run_id: str) -> dict[str, tuple[int, str]]:
        with self.db.read() as s:
            return run_data.list_artifact_files(s, run_id)

    def close(self) -> None:
        self._batches.close()
        self.db.dispose()


_ORDER_KEYS = {"field_name", "ascending", "dataset_name", "dataset_digest"}


def _model_order(spec: Mapping[str, Any]) -> logged_models.ModelOrder:
    """MLflow's ``order_by`` dict as the store's :class:`~flowml.store.logged_models.ModelOrder`."""
    if "field_name" not in spec or set(spec) - _ORDER_KEYS:
        raise InvalidParameterValue(
            f"Invalid order_by entry {dict(spec)!r}: expected the keys field_name, ascending, "
            "dataset_name and dataset_digest"
        )
    return logged_models.ModelOrder(
        str(spec["field_name"]),
        bool(spec.get("ascending", True)),
        spec.get("dataset_name"),
        spec.get("dataset_digest"),
    )


class SqlLoggedModels(LoggedModelBackend):
    """MLflow 3 logged models on the SQL store (served by the REST API; MLflow clients use them)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        experiment_id: str,
        name: str | None,
        source_run_id: str | None,
        tags: Mapping[str, str],
        params: Mapping[str, str],
        model_type: str | None,
    ) -> LoggedModel:
        return self.db.write(
            lambda s: logged_models.create_logged_model(
                s, experiment_id, name, source_run_id, tags, params, model_type
            )
        )

    def get(self, model_id: str) -> LoggedModel:
        with self.db.read() as s:
            return logged_models.get_logged_model(s, model_id)

    def finalize(self, model_id: str, status: str) -> LoggedModel:
        return self.db.write(lambda s: logged_models.finalize_logged_model(s, model_id, status))

    def delete(self, model_id: str) -> None:
        self.db.write(lambda s: logged_models.delete_logged_model(s, model_id))

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        self.db.write(lambda s: logged_models.set_logged_model_tags(s, model_id, tags))

    def delete_tag(self, model_id: str, key: str) -> None:
        self.db.write(lambda s: logged_models.delete_logged_model_tag(s, model_id, key))

    def log_params(self, model_id: str, params: Mapping[str, str]) -> None:
        self.db.write(lambda s: logged_models.log_logged_model_params(s, model_id, params))

    def log_outputs(self, run_id: str, models: Sequence[tuple[str, int]]) -> None:
        self.db.write(lambda s: logged_models.log_outputs(s, run_id, models))

    def log_metrics(self, run_id: str, points: Sequence[ModelMetric]) -> None:
        """Metric points of logged models, logged by run ``run_id``: as in MLflow they are the run's
        metrics too (one transaction)."""
        metrics = [Metric(p.key, p.value, p.timestamp, p.step) for p in points]
        self.db.write(lambda s: run_data.log_batch(s, run_id, metrics, model_points=points))

    def search(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        max_results: int | None,
        order_by: Sequence[ModelOrderSpec | logged_models.ModelOrder] | None,
        page_token: str | None,
        datasets: Sequence[Mapping[str, str]] | None = None,
    ) -> PagedList[LoggedModel]:
        orders = [_model_order(o) if isinstance(o, Mapping) else o for o in order_by or ()]
        with self.db.read() as s:
            return logged_models.search_logged_models(
                s, experiment_ids, filter_string, max_results, orders, page_token, datasets
            )
