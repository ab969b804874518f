"""The registry half of the backend interface (:class:`flowml.client.base.TrackingBackend` extends it).

Store-shaped operations with MLflow's semantics, plus flowml's audit history, event outbox and
promotion gate. Implementations: :class:`flowml.client._local_registry.SqlRegistryMixin` (the SQL
store) and the REST backend. ``user_id`` is the actor recorded in the audit trail (a server takes
it from the authenticated request instead).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from flowml.entities import PagedList
from flowml.entities_registry import (
    EventAttempt,
    GateReport,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    StageTransition,
)

__all__ = ["RegistryBackend"]


class RegistryBackend(ABC):
    # registered models
    @abstractmethod
    def create_registered_model(
        self, name: str, tags: Mapping[str, str], description: str | None, user_id: str | None
    ) -> RegisteredModel: ...

    @abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel: ...

    @abstractmethod
    def rename_registered_model(self, name: str, new_name: str, user_id: str | None) -> RegisteredModel: ...

    @abstractmethod
    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel: ...

    @abstractmethod
    def delete_registered_model(self, name: str, user_id: str | None) -> None: ...

    @abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str) -> None: ...

    @abstractmethod
    def delete_registered_model_tag(self, name: str, key: str) -> None: ...

    @abstractmethod
    def search_registered_models(
        self,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[RegisteredModel]: ...

    @abstractmethod
    def get_latest_versions(self, name: str, stages: Sequence[str] | None) -> list[ModelVersion]: ...

    # model versions
    @abstractmethod
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None,
        tags: Mapping[str, str],
        run_link: str | None,
        description: str | None,
        user_id: str | None,
    ) -> ModelVersion: ...

    @abstractmethod
    def get_model_version(self, name: str, version: str) -> ModelVersion: ...

    @abstractmethod
    def update_model_version(self, name: str, version: str, description: str | None) -> ModelVersion: ...

    @abstractmethod
    def delete_model_version(self, name: str, version: str, user_id: str | None) -> None: ...

    @abstractmethod
    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None: ...

    @abstractmethod
    def delete_model_version_tag(self, name: str, version: str, key: str) -> None: ...

    @abstractmethod
    def search_model_versions(
        self,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[ModelVersion]: ...

    @abstractmethod
    def get_model_version_download_uri(self, name: str, version: str) -> str: ...

    @abstractmethod
    def resolve_model_uri(self, model_uri: str) -> ModelVersion:
        """The version a ``models:/name/<version|stage|latest>`` or ``models:/name@alias`` URI names."""

    # stages and aliases (gated; audited; each writes an outbox event)
    @abstractmethod
    def transition_model_version_stage(
        self,
        name: str,
        version: str,
        stage: str,
        archive_existing_versions: bool,
        reason: str | None,
        user_id: str | None,
    ) -> ModelVersion: ...

    @abstractmethod
    def set_registered_model_alias(
        self, name: str, alias: str, version: str, reason: str | None, user_id: str | None
    ) -> None: ...

    @abstractmethod
    def delete_registered_model_alias(
        self, name: str, alias: str, reason: str | None, user_id: str | None
    ) -> None: ...

    @abstractmethod
    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...

    # promotion gates
    @abstractmethod
    def set_promotion_policy(self, name: str, policy: Mapping[str, Any] | None) -> None: ...

    @abstractmethod
    def get_promotion_policy(self, name: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def check_promotion(self, name: str, version: str, target: str) -> GateReport: ...

    # audit history and event outbox
    @abstractmethod
    def get_registry_history(self, name: str, version: str | None) -> list[StageTransition]: ...

    @abstractmethod
    def list_registry_events(
        self, after_id: int | None, name: str | None, max_results: int, pending_only: bool
    ) -> list[RegistryEvent]: ...

    @abstractmethod
    def pending_registry_events(self, max_results: int) -> list[RegistryEvent]:
        """Events due for delivery now, never overtaking an earlier undelivered event of the model."""

    @abstractmethod
    def record_registry_event_attempt(
        self,
        event_id: int,
        success: bool,
        started_time: int,
        finished_time: int | None,
        target: str | None,
        error: str | None,
        details: Mapping[str, Any] | None,
        retry_at: int | None,
    ) -> RegistryEvent: ...

    @abstractmethod
    def list_registry_event_attempts(self, event_id: int) -> list[EventAttempt]: ...
