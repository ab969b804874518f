"""``FlowmlClient``: MlflowClient's tracking methods over one :class:`TrackingBackend`."""

from __future__ import annotations

import getpass
import json
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowml.client._factory import BackendCache
from flowml.client._logged_models import LoggedModelsMixin
from flowml.client._registry import RegistryMixin
from flowml.client.base import TrackingBackend
from flowml.entities import (
    DatasetInput,
    Experiment,
    FileInfo,
    LoggedModelInput,
    Metric,
    ModelMetric,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.settings import get_settings

if TYPE_CHECKING:  # artifacts (and their imports) load on first artifact call
    from flowml.artifacts import ArtifactRecord, ArtifactRepository

__all__ = ["FlowmlClient", "clear_backend_cache"]

#: Engines and HTTP pools are shared by every client with the same configuration in a process.
_BACKENDS = BackendCache()


def clear_backend_cache() -> None:
    """Close every cached backend (tests, and ``set_tracking_uri`` to a new store)."""
    _BACKENDS.clear()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


class FlowmlClient(LoggedModelsMixin, RegistryMixin):
    """Tracking client with MLflow's ``MlflowClient`` method names, arguments and return shapes.

    ``tracking_uri`` defaults to ``FLOWML_TRACKING_URI`` (else ``sqlite:///<cwd>/flowml.db``);
    ``http(s)://`` URIs talk to a flowml or MLflow server. The registry lives in the tracking store:
    ``registry_uri`` (MLflow's argument) may only name that same store.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        *,
        backend: TrackingBackend | None = None,
    ) -> None:
        settings = get_settings()
        self.tracking_uri = tracking_uri or settings.tracking_uri
        if registry_uri and registry_uri.rstrip("/") != self.tracking_uri.rstrip("/"):
            raise InvalidParameterValue(
                f"flowml keeps the model registry in the tracking store; registry_uri {registry_uri!r} "
                f"must be the tracking URI {self.tracking_uri!r} (or left out)"
            )
        self._s3_endpoint_url = settings.s3_endpoint_url
        self._auth_headers = settings.auth_headers()
        self._backend = backend or _BACKENDS.get(
            self.tracking_uri,
            settings.artifact_root,
            settings.s3_endpoint_url,
            settings.sqlite_busy_timeout_ms,
            self._auth_headers,
        )
        self._artifact_uris: dict[str, str] = {}

    @property
    def backend(self) -> TrackingBackend:
        return self._backend

    # -- experiments ---------------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        str_tags = {k: str(v) for k, v in (tags or {}).items()}
        return self._backend.create_experiment(name, artifact_location, str_tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._backend.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._backend.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Experiment]:
        return self._backend.search_experiments(
            ViewType(view_type), max_results, filter_string or None, order_by, page_token
        )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._backend.rename_experiment(str(experiment_id), new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        self._backend.delete_experiment(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self._backend.restore_experiment(str(experiment_id))

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self._backend.set_experiment_tag(str(experiment_id), key, str(value))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._backend.delete_experiment_tag(str(experiment_id), key)

    # -- runs ----------------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        run_name: str | None = None,
    ) -> Run:
        str_tags = {k: str(v) for k, v in (tags or {}).items()}
        user = str_tags.get("mlflow.user") or _user()
        return self._backend.create_run(str(experiment_id), user, start_time, str_tags, run_name)

    def get_run(self, run_id: str) -> Run:
        return self._backend.get_run(run_id)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        end_time = _now_ms() if status and RunStatus.is_terminated(status.upper()) else None
        self._backend.update_run_info(run_id, status, end_time, name)

    def set_terminated(self, run_id: str, status: str | None = None, end_time: int | None = None) -> RunInfo:
        return self._backend.update_run_info(
            run_id, status or RunStatus.FINISHED, end_time or _now_ms(), None
        )

    def delete_run(self, run_id: str) -> None:
        self._backend.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self._backend.restore_run(run_id)

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
        model_id: str | None = None,
    ) -> None:
        """A metric point of the run; with ``model_id`` also a metric of that logged model (MLflow 3),
        measured on the dataset ``dataset_name`` / ``dataset_digest``."""
        metric = Metric(key, value, timestamp if timestamp is not None else _now_ms(), step or 0)
        if model_id:
            point = ModelMetric(
                key, value, metric.timestamp, metric.step, model_id, run_id, dataset_name, dataset_digest
            )
            self._log_model_points(run_id, [metric], [point])
        else:
            self._backend.log_batch(run_id, [metric], [], [])

    def _log_model_points(
        self, run_id: str, metrics: Sequence[Metric], points: Sequence[ModelMetric]
    ) -> None:
        """``metrics`` for the run and ``points`` (the same values) for logged models, in one batch."""
        self._backend.log_batch(run_id, metrics, [], [], points)

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        self._backend.log_batch(run_id, [], [Param(key, str(value))], [])
        return value

    def set_tag(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> None:
        self._backend.log_batch(run_id, [], [], [RunTag(key, str(value))])

    def delete_tag(self, run_id: str, key: str) -> None:
        self._backend.delete_tag(run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool | None = None,
    ) -> None:
        self._backend.log_batch(
            run_id,
            list(metrics),
            [p if isinstance(p.value, str) else Param(p.key, str(p.value)) for p in params],
            [t if isinstance(t.value, str) else RunTag(t.key, str(t.value)) for t in tags],
        )

    def log_inputs(
        self,
        run_id: str,
        datasets: Sequence[DatasetInput] | None = None,
        models: Sequence[LoggedModelInput] | None = None,
    ) -> None:
        """Record the datasets (``DatasetInput``: a dataset entity and input tags) and MLflow 3 logged
        models a run used; they come back as ``get_run(run_id).inputs``."""
        inputs = list(datasets or ())
        for item in inputs:
            if not isinstance(item, DatasetInput):
                raise InvalidParameterValue(
                    f"datasets must hold DatasetInput entities, not {type(item).__name__} "
                    "(log a flowml.data dataset with flowml.log_input)"
                )
        self._backend.log_inputs(run_id, inputs, [m.model_id for m in models or ()])

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of ``key`` (MLflow's order: timestamp, step, value), paged internally."""
        points: list[Metric] = []
        token: str | None = None
        while True:
            page = self._backend.get_metric_history(run_id, key, 25_000, token)
            points.extend(page)
            token = page.token
            if not token:
                return points

    def search_runs(
        self,
        experiment_ids: str | Sequence[str],
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        ids = [experiment_ids] if isinstance(experiment_ids, str) else [str(e) for e in experiment_ids]
        return self._backend.search_runs(
            ids, filter_string or None, ViewType(run_view_type), max_results, order_by, page_token
        )

    # -- artifacts -----------------------------------------------------------------------------
    def _repo(self, run_id: str) -> ArtifactRepository:
        uri = self._artifact_uris.get(run_id)
        if uri is None:
            uri = self.get_run(run_id).info.artifact_uri
            self._artifact_uris[run_id] = uri
        return self._repo_at(uri)

    def _repo_at(self, uri: str) -> ArtifactRepository:
        """The repository for an artifact URI (a run's or a logged model's location)."""
        if uri.startswith("mlflow-artifacts:"):
            if not self.tracking_uri.startswith(("http://", "https://")):
                raise InvalidParameterValue(
                    f"Artifact URI {uri!r} is served by a tracking server; use an http(s) tracking URI"
                )
            from flowml.artifacts.http import ProxyArtifactRepository

            # the REST backend's pooled proxy client: a repository per call must not leave a socket each
            shared = getattr(self._backend, "artifact_http", None)
            return ProxyArtifactRepository(uri, self.tracking_uri, headers=self._auth_headers, http=shared)
        from flowml.artifacts import get_artifact_repository

        return get_artifact_repository(uri, s3_endpoint_url=self._s3_endpoint_url)

    def _record(self, run_id: str, records: Sequence[ArtifactRecord]) -> None:
        self._backend.record_artifact_files(run_id, [(r.path, r.file_size, r.sha256) for r in records])

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        self._record(run_id, self._repo(run_id).log_artifact(local_path, artifact_path))

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        self._record(run_id, self._repo(run_id).log_artifacts(local_dir, artifact_path))

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._record(run_id, [self._repo(run_id).log_bytes(text.encode("utf-8"), artifact_file)])

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """JSON, or YAML when ``artifact_file`` ends in .yaml/.yml (as MLflow)."""
        if Path(artifact_file).suffix.lower() in (".yaml", ".yml"):
            import yaml

            text = yaml.safe_dump(dictionary, sort_keys=False, default_flow_style=False)
        else:
            text = json.dumps(dictionary, indent=2)
        self.log_text(run_id, text, artifact_file)

    def log_figure(
        self, run_id: str, figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None
    ) -> None:
        """A matplotlib figure (any format it can save) or a plotly figure (.html/.png...)."""
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / Path(artifact_file).name
            if hasattr(figure, "savefig"):
                figure.savefig(local, **(save_kwargs or {}))
            elif hasattr(figure, "write_html") and local.suffix == ".html":
                figure.write_html(local, **(save_kwargs or {}))
            elif hasattr(figure, "write_image"):
                figure.write_image(local, **(save_kwargs or {}))
            else:
                raise InvalidParameterValue(
                    f"Unsupported figure object of type {type(figure).__name__}: "
                    "expected a matplotlib or plotly figure"
                )
            parent = str(Path(artifact_file).parent)
            self.log_artifact(run_id, local, None if parent in ("", ".") else parent)

    def log_table(self, run_id: str, data: Any, artifact_file: str) -> None:
        """MLflow's ``log_table``: a DataFrame or dict as a ``.json``/``.parquet`` artifact, appended to
        what the file already holds (:mod:`flowml.tracking.tables`)."""
        from flowml.tracking import tables

        tables.log_table(self, run_id, data, artifact_file)

    def log_image(
        self,
        run_id: str,
        image: Any,
        artifact_file: str | None = None,
        key: str | None = None,
        step: int | None = None,
        timestamp: int | None = None,
        synchronous: bool | None = None,
    ) -> None:
        """MLflow's ``log_image``: a numpy array, PIL image or ``flowml.Image`` as ``artifact_file``, or
        as the step image ``key`` MLflow's UI charts (:mod:`flowml.tracking.images`)."""
        from flowml.tracking import images

        images.log_image(self, run_id, image, artifact_file, key, step, timestamp, synchronous)

    def load_table(
        self,
        experiment_id: str,
        artifact_file: str,
        run_ids: Sequence[str] | None = None,
        extra_columns: Sequence[str] | None = None,
    ) -> Any:
        """The table ``artifact_file`` of the experiment's runs that logged it, as one DataFrame."""
        from flowml.tracking import tables

        return tables.load_table(self, experiment_id, artifact_file, run_ids, extra_columns)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The entries directly under ``path`` of the run's artifacts and, as in MLflow 3, of the
        run's logged model when ``path`` starts with its name (``"model"``, ``"model/sub"``)."""
        return self._repo(run_id).list_artifacts(path) + self._list_run_model_artifacts(run_id, path)

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        """Download ``path`` of the run's artifacts; as in MLflow 3, a ``path`` starting with the name
        of one of the run's logged models also downloads the model's files (``dst_path/<name>/...``).
        The local path of the run's artifact, else of the model's."""
        dst = str(dst_path) if dst_path is not None else tempfile.mkdtemp(prefix="flowml-download-")
        try:
            run_out: str | None = self._repo(run_id).download_artifacts(path, dst)
        except ResourceDoesNotExist:
            run_out = None
        model_out = self._download_run_model_artifacts(run_id, path, dst)
        out = run_out or model_out
        if out is None:
            raise ResourceDoesNotExist(
                f"Failed to download artifacts from path {path!r}, please ensure that the path is correct."
            )
        return out

    def get_artifact_checksums(self, run_id: str) -> dict[str, tuple[int, str]]:
        """``{path: (size, sha256)}`` recorded when each artifact file was logged."""
        return self._backend.list_artifact_files(run_id)
