"""Public data types of the model registry, shaped like MLflow's ``mlflow.entities.model_registry``.

Stdlib only (like :mod:`flowml.entities`). Besides MLflow's shapes it holds flowml's additions:
the audit row (:class:`StageTransition`), the outbox event (:class:`RegistryEvent`) and its delivery
attempts, and the promotion-gate result (:class:`GateReport`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACTIVE_STAGES",
    "ALL_STAGES",
    "STAGE_ARCHIVED",
    "STAGE_DELETED_INTERNAL",
    "STAGE_NONE",
    "STAGE_PRODUCTION",
    "STAGE_STAGING",
    "EventAttempt",
    "GateReport",
    "GateRuleResult",
    "HistoryKind",
    "ModelUri",
    "ModelVersion",
    "ModelVersionStatus",
    "RegisteredModel",
    "RegisteredModelAlias",
    "RegistryEvent",
    "RegistryEventType",
    "StageTransition",
    "canonical_stage",
    "parse_model_uri",
]

STAGE_NONE = "None"
STAGE_STAGING = "Staging"
STAGE_PRODUCTION = "Production"
STAGE_ARCHIVED = "Archived"
STAGE_DELETED_INTERNAL = "Deleted_Internal"

#: The stages a user can set, in MLflow's order.
ALL_STAGES: tuple[str, ...] = (STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED)
#: The stages ``archive_existing_versions`` may be used with (MLflow's "active" stages).
ACTIVE_STAGES: tuple[str, ...] = (STAGE_STAGING, STAGE_PRODUCTION)
_STAGE_BY_LOWER = {s.lower(): s for s in ALL_STAGES}


def canonical_stage(stage: str) -> str:
    """``stage`` in MLflow's spelling (input is case-insensitive); ``ValueError`` when unknown."""
    canonical = _STAGE_BY_LOWER.get(str(stage).strip().lower())
    if canonical is None:
        raise ValueError(
            f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(ALL_STAGES)}."
        )
    return canonical


class ModelVersionStatus:
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    FAILED_REGISTRATION = "FAILED_REGISTRATION"
    READY = "READY"


class RegistryEventType:
    """Outbox event types (``entity.action``)."""

    MODEL_VERSION_CREATED = "model_version.created"
    MODEL_VERSION_STAGE_CHANGED = "model_version.stage_changed"
    MODEL_VERSION_DELETED = "model_version.deleted"
    ALIAS_MOVED = "alias.moved"
    ALIAS_DELETED = "alias.deleted"
    REGISTERED_MODEL_RENAMED = "registered_model.renamed"
    REGISTERED_MODEL_DELETED = "registered_model.deleted"


class HistoryKind:
    """What an audit row records."""

    CREATED = "created"  # a version was registered (to_value = its stage, "None")
    STAGE = "stage"  # from_value → to_value are stages
    ALIAS = "alias"  # from_value → to_value are versions (None: unset)
    DELETED = "deleted"  # a version was deleted (from_value = its last stage)
    REFUSED = "promotion_refused"  # a gated promotion was refused; details hold the report


@dataclass(frozen=True, slots=True)
class RegisteredModelAlias:
    alias: str
    version: str


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int
    current_stage: str = STAGE_NONE
    description: str | None = None
    user_id: str | None = None
    source: str | None = None
    run_id: str | None = None
    status: str = ModelVersionStatus.READY
    status_message: str | None = None
    run_link: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    #: Where the model's files are (a ``runs:/`` or ``models:/`` source resolved); else the source.
    storage_location: str | None = None
    #: MLflow 3's logged-model id of the version, when a server reports one (MLflow's SQL store, and
    #: flowml's, leave it unset: the link is the logged model's ``mlflow.modelVersions`` tag).
    model_id: str | None = None


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str | None = None
    user_id: str | None = None
    #: The latest version in each stage (MLflow's ``latest_versions``).
    latest_versions: tuple[ModelVersion, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    #: ``{alias: version}``.
    aliases: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StageTransition:
    """One audit row: who moved what (a stage or an alias) from where to where, when and why."""

    id: int
    name: str
    kind: str
    version: str | None
    from_value: str | None
    to_value: str | None
    timestamp: int
    user_id: str | None = None
    reason: str | None = None
    alias: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """One outbox row. ``delivered_time`` is set once a delivery attempt succeeded."""

    id: int
    event_type: str
    name: str
    version: str | None
    payload: Mapping[str, Any]
    created_time: int
    delivered_time: int | None = None
    attempts: int = 0
    last_error: str | None = None
    next_attempt_time: int | None = None


@dataclass(frozen=True, slots=True)
class EventAttempt:
    event_id: int
    attempt: int
    started_time: int
    finished_time: int
    success: bool
    target: str | None = None
    error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GateRuleResult:
    rule: Mapping[str, Any]
    passed: bool
    message: str


@dataclass(frozen=True, slots=True)
class GateReport:
    """The outcome of a promotion gate: every rule with whether it passed and why."""

    name: str
    version: str
    target: str
    champion_version: str | None
    results: tuple[GateRuleResult, ...] = ()
    #: False when no policy applies to ``target`` (then the promotion is not gated).
    gated: bool = True

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[GateRuleResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "target": self.target,
            "champion_version": self.champion_version,
            "gated": self.gated,
            "passed": self.passed,
            "rules": [{"rule": dict(r.rule), "passed": r.passed, "message": r.message} for r in self.results],
        }

    def summary(self) -> str:
        failed = "; ".join(r.message for r in self.failures)
        return f"Promotion of {self.name} version {self.version} to {self.target} refused: {failed}"


# -- models:/ URIs ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ModelUri:
    """A parsed ``models:/`` URI: exactly one of ``version``, ``stage``, ``alias`` is set."""

    name: str
    version: str | None = None
    stage: str | None = None
    alias: str | None = None
    path: str = ""


_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<ref>[^/]+))(?:/(?P<path>.*))?$")


def parse_model_uri(uri: str) -> ModelUri:
    """Parse ``models:/<name>/<version|stage|latest>[/path]`` or ``models:/<name>@<alias>[/path]``.

    ``models:/<name>/latest`` parses as the alias ``latest`` (the highest version). Raises
    ``ValueError`` for anything else.
    """
    match = _MODELS_URI.match(uri) if isinstance(uri, str) else None
    if match is None:
        raise ValueError(
            f"Invalid model URI {uri!r}: expected models:/<name>/<version or stage> or models:/<name>@<alias>"
        )
    name, alias, ref, path = match["name"], match["alias"], match["ref"], match["path"] or ""
    if alias is not None:
        return ModelUri(name, alias=alias, path=path)
    assert ref is not None
    if ref.isdigit():
        return ModelUri(name, version=str(int(ref)), path=path)
    if ref.lower() == "latest":
        return ModelUri(name, alias="latest", path=path)
    return ModelUri(name, stage=canonical_stage(ref), path=path)
