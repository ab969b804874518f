"""``LoggedModelsMixin``: MlflowClient's MLflow 3 logged-model methods (mixed into ``FlowmlClient``).

A logged model's files live at its ``artifact_location`` (``<experiment location>/models/<model_id>/
artifacts``) and go through :mod:`flowml.artifacts` like a run's. When an upload holds flowml's
integrity manifest at its root, the manifest's sha256 is recorded on the model as the tag
:data:`MODEL_CHECKSUMS_TAG`, so ``load_model`` can tell a rewritten manifest (the run-artifact path keeps
per-file checksums in the store instead).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flowml.entities import FileInfo, LoggedModel, LoggedModelOutput, LoggedModelStatus, PagedList
from flowml.exceptions import FlowmlError, InvalidParameterValue, ResourceDoesNotExist

if TYPE_CHECKING:
    from flowml.artifacts import ArtifactRecord, ArtifactRepository
    from flowml.client._logged_models_backend import ModelOrderSpec
    from flowml.client.base import TrackingBackend

__all__ = ["MODEL_CHECKSUMS_TAG", "LoggedModelsMixin"]

logger = logging.getLogger(__name__)

#: sha256 of the integrity manifest uploaded with the model's files.
MODEL_CHECKSUMS_TAG = "flowml.model.checksums_sha256"


def _model_id(model_id: str | None) -> str:
    if not model_id or not isinstance(model_id, str):
        raise InvalidParameterValue(f"`model_id` must be a non-empty string, but got {model_id!r}")
    return model_id


def _str_map(items: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (items or {}).items()}


class LoggedModelsMixin:
    """The logged-model methods of :class:`flowml.client.FlowmlClient` (over ``self._backend``)."""

    _backend: TrackingBackend

    def _repo_at(self, uri: str) -> ArtifactRepository:  # pragma: no cover - FlowmlClient's
        raise NotImplementedError

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        """A new PENDING logged model (finalize it, or let ``log_model`` do both)."""
        return self._backend.logged_models.create(
            str(experiment_id), name, source_run_id, _str_map(tags), _str_map(params), model_type
        )

    def get_logged_model(self, model_id: str) -> LoggedModel:
        return self._backend.logged_models.get(_model_id(model_id))

    def delete_logged_model(self, model_id: str) -> None:
        self._backend.logged_models.delete(_model_id(model_id))

    def finalize_logged_model(self, model_id: str, status: str | LoggedModelStatus) -> LoggedModel:
        """Set the final status: ``"READY"`` / ``"FAILED"`` (or :class:`LoggedModelStatus`)."""
        try:
            parsed = LoggedModelStatus.parse(status)
        except ValueError as exc:
            raise InvalidParameterValue(f"Invalid logged model status {status!r}") from exc
        return self._backend.logged_models.finalize(_model_id(model_id), parsed.value)

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, Any]) -> None:
        self._backend.logged_models.set_tags(_model_id(model_id), _str_map(tags))

    def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        self._backend.logged_models.delete_tag(_model_id(model_id), key)

    def log_model_params(self, model_id: str, params: Mapping[str, Any]) -> None:
        """Params of a logged model (refused, as by MLflow, when the model cannot be read)."""
        _model_id(model_id)
        try:
            self.get_logged_model(model_id)
        except FlowmlError as exc:
            raise InvalidParameterValue(
                f"Failed to get logged model with ID {model_id}. You may not have access to the logged "
                "model, or the logged model may have been deleted. If you are attempting to log "
                "parameters to a Registered Model Version, this is not supported."
            ) from exc
        self._backend.logged_models.log_params(model_id, _str_map(params))

    def log_outputs(self, run_id: str, models: Sequence[LoggedModelOutput]) -> None:
        """Record logged models as the run's outputs (``run.outputs.model_outputs``)."""
        self._backend.logged_models.log_outputs(run_id, [(m.model_id, int(m.step)) for m in models])

    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        datasets: Sequence[Mapping[str, Any]] | None = None,
        max_results: int | None = None,
        order_by: Sequence[ModelOrderSpec] | None = None,
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """One page of the experiments' logged models (MLflow's filter grammar and ``order_by`` dicts)."""
        if isinstance(experiment_ids, str) or not all(isinstance(e, str) for e in experiment_ids):
            raise InvalidParameterValue(f"experiment_ids must be a list of strings, got {experiment_ids!r}")
        return self._backend.logged_models.search(
            list(experiment_ids),
            filter_string or None,
            max_results,
            list(order_by or ()),
            page_token,
            [dict(d) for d in datasets or ()],
        )

    # -- files ---------------------------------------------------------------------------------
    def _model_repo(self, model_id: str) -> ArtifactRepository:
        return self._repo_at(self.get_logged_model(model_id).artifact_location)

    def _log_model_artifacts(
        self, model_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactRecord]:
        from flowml.models.integrity import MANIFEST_FILE

        records = self._model_repo(model_id).log_artifacts(local_dir, artifact_path)
        if not artifact_path:
            manifest = next((r for r in records if r.path == MANIFEST_FILE), None)
            if manifest is not None:
                self.set_logged_model_tags(model_id, {MODEL_CHECKSUMS_TAG: manifest.sha256})
        return records

    def log_model_artifacts(
        self, model_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Upload ``local_dir``'s files to the logged model's artifact location."""
        self._log_model_artifacts(model_id, local_dir, artifact_path)

    def log_model_artifact(
        self, model_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        self._model_repo(model_id).log_artifact(local_path, artifact_path)

    def list_logged_model_artifacts(self, model_id: str, path: str | None = None) -> list[FileInfo]:
        return self._model_repo(model_id).list_artifacts(path)

    def download_logged_model_artifacts(
        self, model_id: str, path: str = "", dst_path: str | None = None
    ) -> str:
        """Download the logged model's files (or ``path`` below them) into ``dst_path``; the local path."""
        return self._model_repo(model_id).download_artifacts(path, dst_path)

    # -- a run's artifact paths that name its logged models (MLflow 3's runs:/ repository) -------
    def _run_logged_models(
        self, experiment_id: str, run_id: str, name: str, max_results: int | None = None
    ) -> list[LoggedModel]:
        """Run ``run_id``'s logged models called ``name``, in its experiment (one search page)."""
        escaped = name.replace("'", "''")  # the filter grammar's quote escape
        filter_string = f"name = '{escaped}' AND source_run_id = '{run_id}'"
        return list(self.search_logged_models([experiment_id], filter_string, max_results=max_results))

    def _run_logged_model(self, run_id: str, name: str) -> LoggedModel | None:
        """The run's logged model called ``name`` (the first the search orders), or None; a store
        without logged models (a server that does not serve them) counts as none."""
        experiment_id = self._backend.get_run(run_id).info.experiment_id  # an unknown run is an error
        try:
            found = self._run_logged_models(experiment_id, run_id, name, max_results=1)
        except FlowmlError as exc:
            logger.debug("no logged model lookup for run %s, name %r: %s", run_id, name, exc)
            return None
        return found[0] if found else None

    def _list_run_model_artifacts(self, run_id: str, path: str | None) -> list[FileInfo]:
        """What ``list_artifacts(run_id, "<name>[/sub]")`` adds when ``<name>`` is one of the run's
        logged models: its files below ``sub``, named ``<name>/...`` (none for the run's root)."""
        name, _, below = (path or "").strip("/").partition("/")
        model = self._run_logged_model(run_id, name) if name else None
        if model is None:
            return []
        listed = self._repo_at(model.artifact_location).list_artifacts(below or None)
        return [FileInfo(f"{name}/{f.path}", f.is_dir, f.file_size) for f in listed]

    def _download_run_model_artifacts(self, run_id: str, path: str, dst_path: str) -> str | None:
        """Download ``<name>[/sub]`` of the run's logged model ``<name>`` into ``dst_path/<name>``;
        None when the run has no logged model of that name or it has no ``sub``."""
        name, _, below = path.strip("/").partition("/")
        model = self._run_logged_model(run_id, name) if name else None
        if model is None:
            return None
        target = os.path.join(dst_path, name)
        try:
            return self._repo_at(model.artifact_location).download_artifacts(below, target)
        except ResourceDoesNotExist:
            return None
