"""``RegistryMixin``: MlflowClient's model-registry methods (mixed into :class:`FlowmlClient`).

Names, arguments and return types follow ``mlflow.MlflowClient``; flowml adds an optional
``reason`` on stage and alias changes, the audit history, the event outbox and promotion gates.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flowml.client._registry_backend import RegistryBackend
from flowml.entities import PagedList
from flowml.entities_registry import (
    EventAttempt,
    GateReport,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    StageTransition,
)
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist

if TYPE_CHECKING:
    from flowml.client.base import TrackingBackend

__all__ = ["RegistryMixin"]


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _str_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (tags or {}).items()}


class RegistryMixin:
    """The registry methods of :class:`flowml.client.FlowmlClient` (over ``self._backend``)."""

    _backend: TrackingBackend

    @property
    def _registry(self) -> RegistryBackend:
        return self._backend

    # -- registered models ---------------------------------------------------------------------
    def create_registered_model(
        self, name: str, tags: Mapping[str, Any] | None = None, description: str | None = None
    ) -> RegisteredModel:
        return self._registry.create_registered_model(name, _str_tags(tags), description, _actor())

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self._registry.get_registered_model(name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self._registry.rename_registered_model(name, new_name, _actor())

    def update_registered_model(self, name: str, description: str | None = None) -> RegisteredModel:
        return self._registry.update_registered_model(name, description)

    def delete_registered_model(self, name: str) -> None:
        self._registry.delete_registered_model(name, _actor())

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self._registry.set_registered_model_tag(name, key, str(value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._registry.delete_registered_model_tag(name, key)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        return self._registry.search_registered_models(
            filter_string or None, max_results, order_by, page_token
        )

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        """Deprecated in MLflow (stages); the latest version per stage (every stage when None)."""
        return self._registry.get_latest_versions(name, list(stages) if stages else None)

    # -- model versions ------------------------------------------------------------------------
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
        await_creation_for: int = 300,
    ) -> ModelVersion:
        """Register ``source`` as a new version (READY at once, so ``await_creation_for`` is moot)."""
        return self._registry.create_model_version(
            name, source, run_id or None, _str_tags(tags), run_link, description, _actor()
        )

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        return self._registry.get_model_version(name, str(version))

    def update_model_version(
        self, name: str, version: str | int, description: str | None = None
    ) -> ModelVersion:
        return self._registry.update_model_version(name, str(version), description)

    def delete_model_version(self, name: str, version: str | int) -> None:
        self._registry.delete_model_version(name, str(version), _actor())

    def _version_for(self, name: str, version: str | int | None, stage: str | None) -> str:
        if version is not None and stage is not None:
            raise InvalidParameterValue("version and stage cannot be set together")
        if version is not None:
            return str(version)
        if stage is None:
            raise InvalidParameterValue("version or stage must be set")
        latest = self._registry.get_latest_versions(name, [stage])
        if not latest:
            raise ResourceDoesNotExist(f"Could not find any model version for {stage} stage")
        return latest[0].version

    def set_model_version_tag(
        self,
        name: str,
        version: str | int | None = None,
        key: str | None = None,
        value: Any = None,
        stage: str | None = None,
    ) -> None:
        if key is None:
            raise InvalidParameterValue("Missing value for required parameter 'key'")
        self._registry.set_model_version_tag(name, self._version_for(name, version, stage), key, str(value))

    def delete_model_version_tag(
        self, name: str, version: str | int | None = None, key: str | None = None, stage: str | None = None
    ) -> None:
        if key is None:
            raise InvalidParameterValue("Missing value for required parameter 'key'")
        self._registry.delete_model_version_tag(name, self._version_for(name, version, stage), key)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        return self._registry.search_model_versions(filter_string or None, max_results, order_by, page_token)

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        return self._registry.get_model_version_download_uri(name, str(version))

    def resolve_model_uri(self, model_uri: str) -> ModelVersion:
        """flowml: the version behind ``models:/name/<version|stage|latest>`` or ``models:/name@alias``."""
        return self._registry.resolve_model_uri(model_uri)

    # -- stages and aliases --------------------------------------------------------------------
    def transition_model_version_stage(
        self,
        name: str,
        version: str | int,
        stage: str,
        archive_existing_versions: bool = False,
        *,
        reason: str | None = None,
    ) -> ModelVersion:
        """Move a version to None/Staging/Production/Archived (a promotion policy may refuse it)."""
        return self._registry.transition_model_version_stage(
            name, str(version), stage, bool(archive_existing_versions), reason, _actor()
        )

    def set_registered_model_alias(
        self, name: str, alias: str, version: str | int, *, reason: str | None = None
    ) -> None:
        self._registry.set_registered_model_alias(name, alias, str(version), reason, _actor())

    def delete_registered_model_alias(self, name: str, alias: str, *, reason: str | None = None) -> None:
        self._registry.delete_registered_model_alias(name, alias, reason, _actor())

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._registry.get_model_version_by_alias(name, alias)

    # -- flowml: promotion gates, audit history, events ----------------------------------------
    def set_promotion_policy(self, name: str, policy: Mapping[str, Any] | None) -> None:
        """Store (validated) or clear (``None``) the promotion policy of a registered model."""
        self._registry.set_promotion_policy(name, policy)

    def get_promotion_policy(self, name: str) -> dict[str, Any] | None:
        return self._registry.get_promotion_policy(name)

    def check_promotion(self, name: str, version: str | int, to: str) -> GateReport:
        """Dry-run the gate for promoting ``version`` to a stage or ``@alias``."""
        return self._registry.check_promotion(name, str(version), to)

    def get_registry_history(self, name: str, version: str | int | None = None) -> list[StageTransition]:
        """Who moved which version or alias from where to where, when and why (oldest first)."""
        return self._registry.get_registry_history(name, None if version is None else str(version))

    def list_registry_events(
        self,
        after_id: int | None = None,
        name: str | None = None,
        max_results: int = 1000,
        pending_only: bool = False,
    ) -> list[RegistryEvent]:
        """Outbox events in id order (commit order per model), optionally of one model."""
        return self._registry.list_registry_events(after_id, name, max_results, pending_only)

    def pending_registry_events(self, max_results: int = 100) -> list[RegistryEvent]:
        """Dispatcher seam: events due for delivery, never overtaking within a model."""
        return self._registry.pending_registry_events(max_results)

    def record_registry_event_attempt(
        self,
        event_id: int,
        *,
        success: bool,
        started_time: int | None = None,
        target: str | None = None,
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
        retry_at: int | None = None,
    ) -> RegistryEvent:
        """Dispatcher seam: record one delivery attempt (delivered, or failed with a retry time)."""
        now = time.time_ns() // 1_000_000
        return self._registry.record_registry_event_attempt(
            event_id, success, started_time or now, now, target, error, details, retry_at
        )

    def list_registry_event_attempts(self, event_id: int) -> list[EventAttempt]:
        return self._registry.list_registry_event_attempts(event_id)
