"""The registry over the SQL store: :class:`SqlRegistryMixin`, mixed into :class:`SqlBackend`.

Each call is one read or one write transaction. A promotion refused by its gate rolls its own
transaction back, so the refusal is audited in a second transaction before the error propagates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy.orm import Session

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
from flowml.store import Database, registry

__all__ = ["SqlRegistryMixin"]

T = TypeVar("T")


class SqlRegistryMixin(RegistryBackend):
    """Needs ``self.db`` (the store) and ``self.artifact_root`` (where sources may point)."""

    db: Database
    artifact_root: str

    def _allowed_source_roots(self) -> list[str]:
        return [self.artifact_root]

    def _read(self, fn: Callable[[Session], T]) -> T:
        with self.db.read() as session:
            return fn(session)

    def _gated_write(self, fn: Callable[[Session], T], user_id: str | None, reason: str | None) -> T:
        try:
            return self.db.write(fn)
        except registry.PromotionRefused as refused:
            report = refused.report
            self.db.write(lambda s: registry.record_refusal(s, report, user_id, reason))
            raise

    # registered models
    def create_registered_model(
        self, name: str, tags: Mapping[str, str], description: str | None, user_id: str | None
    ) -> RegisteredModel:
        return self.db.write(lambda s: registry.create_registered_model(s, name, tags, description, user_id))

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self._read(lambda s: registry.get_registered_model(s, name))

    def rename_registered_model(self, name: str, new_name: str, user_id: str | None) -> RegisteredModel:
        return self.db.write(lambda s: registry.rename_registered_model(s, name, new_name, user_id))

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        return self.db.write(lambda s: registry.update_registered_model(s, name, description))

    def delete_registered_model(self, name: str, user_id: str | None) -> None:
        self.db.write(lambda s: registry.delete_registered_model(s, name, user_id))

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self.db.write(lambda s: registry.set_registered_model_tag(s, name, key, value))

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.db.write(lambda s: registry.delete_registered_model_tag(s, name, key))

    def search_registered_models(
        self,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[RegisteredModel]:
        return self._read(
            lambda s: registry.search_registered_models(s, filter_string, max_results, order_by, page_token)
        )

    def get_latest_versions(self, name: str, stages: Sequence[str] | None) -> list[ModelVersion]:
        return self._read(lambda s: registry.get_latest_versions(s, name, stages))

    # model versions
    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None,
        tags: Mapping[str, str],
        run_link: str | None,
        description: str | None,
        user_id: str | None,
    ) -> ModelVersion:
        roots = self._allowed_source_roots()
        return self.db.write(
            lambda s: registry.create_model_version(
                s, name, source, run_id, tags, run_link, description, user_id, allowed_source_roots=roots
            )
        )

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        return self._read(lambda s: registry.get_model_version(s, name, version))

    def update_model_version(self, name: str, version: str, description: str | None) -> ModelVersion:
        return self.db.write(lambda s: registry.update_model_version(s, name, version, description))

    def delete_model_version(self, name: str, version: str, user_id: str | None) -> None:
        self.db.write(lambda s: registry.delete_model_version(s, name, version, user_id))

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.db.write(lambda s: registry.set_model_version_tag(s, name, version, key, value))

    def delete_model_version_tag(self, name: str, version: str, key: str) -> None:
        self.db.write(lambda s: registry.delete_model_version_tag(s, name, version, key))

    def search_model_versions(
        self,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
    ) -> PagedList[ModelVersion]:
        return self._read(
            lambda s: registry.search_model_versions(s, filter_string, max_results, order_by, page_token)
        )

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        return self._read(lambda s: registry.get_model_version_download_uri(s, name, version))

    def resolve_model_uri(self, model_uri: str) -> ModelVersion:
        return self._read(lambda s: registry.resolve_model_uri(s, model_uri))

    # stages and aliases
    def transition_model_version_stage(
        self,
        name: str,
        version: str,
        stage: str,
        archive_existing_versions: bool,
        reason: str | None,
        user_id: str | None,
    ) -> ModelVersion:
        return self._gated_write(
            lambda s: registry.transition_model_version_stage(
                s, name, version, stage, archive_existing_versions, reason=reason, user_id=user_id
            ),
            user_id,
            reason,
        )

    def set_registered_model_alias(
        self, name: str, alias: str, version: str, reason: str | None, user_id: str | None
    ) -> None:
        self._gated_write(
            lambda s: registry.set_registered_model_alias(
                s, name, alias, version, reason=reason, user_id=user_id
            ),
            user_id,
            reason,
        )

    def delete_registered_model_alias(
        self, name: str, alias: str, reason: str | None, user_id: str | None
    ) -> None:
        self.db.write(
            lambda s: registry.delete_registered_model_alias(s, name, alias, reason=reason, user_id=user_id)
        )

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._read(lambda s: registry.get_model_version_by_alias(s, name, alias))

    # promotion gates
    def set_promotion_policy(self, name: str, policy: Mapping[str, Any] | None) -> None:
        self.db.write(lambda s: registry.set_promotion_policy(s, name, policy))

    def get_promotion_policy(self, name: str) -> dict[str, Any] | None:
        return self._read(lambda s: registry.get_promotion_policy(s, name))

    def check_promotion(self, name: str, version: str, target: str) -> GateReport:
        return self._read(lambda s: registry.check_promotion(s, name, version, target))

    # audit history and event outbox
    def get_registry_history(self, name: str, version: str | None) -> list[StageTransition]:
        return self._read(lambda s: registry.get_registry_history(s, name, version))

    def list_registry_events(
        self, after_id: int | None, name: str | None, max_results: int, pending_only: bool
    ) -> list[RegistryEvent]:
        return self._read(
            lambda s: registry.list_registry_events(s, after_id, name, max_results, pending_only)
        )

    def pending_registry_events(self, max_results: int) -> list[RegistryEvent]:
        return self._read(lambda s: registry.pending_registry_events(s, max_results))

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
    ) -> RegistryEvent:
        return self.db.write(
            lambda s: registry.record_event_attempt(
                s, event_id, success=success, started_time=started_time, finished_time=finished_time,
                target=target, error=error, details=details, retry_at=retry_at,
            )
        )  # fmt: skip

    def list_registry_event_attempts(self, event_id: int) -> list[EventAttempt]:
        return self._read(lambda s: registry.list_event_attempts(s, event_id))
