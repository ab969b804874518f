"""Stage transitions, aliases and the promotion gate (re-exported by :mod:`flowml.store.registry`).

Every change here runs under the registered model's row lock and writes its audit row and outbox
event in the same transaction as the change itself.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from flowml.entities_registry import (
    ACTIVE_STAGES,
    STAGE_ARCHIVED,
    STAGE_DELETED_INTERNAL,
    GateReport,
    HistoryKind,
    ModelVersion,
    RegistryEventType,
    canonical_stage,
)
from flowml.exceptions import InvalidParameterValue, InvalidState
from flowml.store import _registry_events as events
from flowml.store._registry_policy import (
    POLICY_TAG,
    Candidate,
    evaluate_policy,
    normalize_target,
    parse_policy,
)
from flowml.store._registry_read import (
    ALIASES,
    MODEL_TAGS,
    VERSION_TAGS,
    VERSIONS,
    as_dict,
    load_versions,
    model_row,
    parse_version,
    touch_model,
    version_row,
)
from flowml.store.tables import LatestMetricRow, RunTagRow, table_of
from flowml.store.tracking import now_ms

__all__ = [
    "PromotionRefused",
    "check_alias_name",
    "check_promotion",
    "delete_registered_model_alias",
    "get_model_version_by_alias",
    "set_registered_model_alias",
    "transition_model_version_stage",
]

MAX_ALIAS_LENGTH = 255
_ALIAS_RE = re.compile(r"^[\w\-]+$")
_RESERVED_VERSION_ALIAS = re.compile(r"^[vV]\d+$")
_LATEST = table_of(LatestMetricRow)
_RUN_TAGS = table_of(RunTagRow)


class PromotionRefused(InvalidState):
    """A gated promotion failed its policy; ``details["report"]`` says which rule failed."""

    def __init__(self, report: GateReport) -> None:
        super().__init__(report.summary(), report=report.to_dict())
        self.report = report


def check_alias_name(alias: object, *, for_write: bool = True) -> str:
    if not isinstance(alias, str) or not alias or len(alias) > MAX_ALIAS_LENGTH or not _ALIAS_RE.match(alias):
        raise InvalidParameterValue(
            f"Invalid alias name: '{alias}'. Aliases may only contain alphanumerics, underscores and "
            f"dashes, and be at most {MAX_ALIAS_LENGTH} characters long."
        )
    if for_write and (alias.lower() == "latest" or _RESERVED_VERSION_ALIAS.match(alias)):
        raise InvalidParameterValue(
            f"'{alias}' alias name (case insensitive) is reserved: 'latest' and 'v<number>' cannot be used."
        )
    return alias


def _entity(session: Session, model: Row[Any], number: int) -> ModelVersion:
    return load_versions(session, [version_row(session, model, number)], {model.model_id: model.name})[0]


# -- the gate ---------------------------------------------------------------------------------
def _candidate(session: Session, row: Row[Any]) -> Candidate:
    version_tags = as_dict(
        session.execute(
            select(VERSION_TAGS.c.key, VERSION_TAGS.c.value).where(
                VERSION_TAGS.c.model_id == row.model_id, VERSION_TAGS.c.version == row.version
            )
        ).all()
    )
    metrics: dict[str, float] = {}
    run_tags: dict[str, str] = {}
    if row.run_id:
        for key, value, is_nan in session.execute(
            select(_LATEST.c.key, _LATEST.c.value, _LATEST.c.is_nan).where(_LATEST.c.run_id == row.run_id)
        ):
            metrics[key] = float("nan") if is_nan else float(value)
        run_tags = as_dict(
            session.execute(
                select(_RUN_TAGS.c.key, _RUN_TAGS.c.value).where(_RUN_TAGS.c.run_id == row.run_id)
            ).all()
        )
    return Candidate(str(row.version), row.run_id, metrics, run_tags, version_tags)


def _holder(session: Session, model: Row[Any], target: str, exclude: int) -> Row[Any] | None:
    """The version now holding ``target`` (a stage: its highest version; ``@alias``: the alias's)."""
    if target.startswith("@"):
        number = session.execute(
            select(ALIASES.c.version).where(
                ALIASES.c.model_id == model.model_id, ALIASES.c.alias == target[1:]
            )
        ).scalar()
    else:
        number = session.execute(
            select(func.max(VERSIONS.c.version)).where(
                VERSIONS.c.model_id == model.model_id,
                VERSIONS.c.current_stage == target,
                VERSIONS.c.version != exclude,
            )
        ).scalar()
    if number is None or number == exclude:
        return None
    return session.execute(
        select(VERSIONS).where(VERSIONS.c.model_id == model.model_id, VERSIONS.c.version == number)
    ).first()


def _gate(session: Session, model: Row[Any], row: Row[Any], target: str) -> GateReport:
    text = session.execute(
        select(MODEL_TAGS.c.value).where(
            MODEL_TAGS.c.model_id == model.model_id, MODEL_TAGS.c.key == POLICY_TAG
        )
    ).scalar()
    policy = parse_policy(text) if text else None
    holder = _holder(session, model, target, row.version) if policy and policy.applies_to(target) else None
    champion = _candidate(session, holder) if holder is not None else None
    return evaluate_policy(policy, model.name, target, _candidate(session, row), champion)


def check_promotion(session: Session, name: str, version: str | int, target: str) -> GateReport:
    """Dry run of the gate for promoting ``version`` to ``target`` (a stage or ``@alias``)."""
    model = model_row(session, name)
    return _gate(session, model, version_row(session, model, version), normalize_target(target))


def _enforce(session: Session, model: Row[Any], row: Row[Any], target: str) -> None:
    report = _gate(session, model, row, target)
    if report.gated and not report.passed:
        raise PromotionRefused(report)


# -- stages -----------------------------------------------------------------------------------
def _set_stage(
    session: Session, model: Row[Any], row: Row[Any], stage: str, ts: int, *,
    user_id: str | None, reason: str | None, extra: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    session.execute(
        update(VERSIONS)
        .where(VERSIONS.c.model_id == model.model_id, VERSIONS.c.version == row.version)
        .values(current_stage=stage, last_updated_time=ts)
    )
    events.add_history(
        session, model.model_id, model.name, HistoryKind.STAGE, timestamp=ts, version=row.version,
        from_value=row.current_stage, to_value=stage, user_id=user_id, reason=reason,
    )  # fmt: skip
    events.add_event(
        session,
        model.model_id,
        model.name,
        RegistryEventType.MODEL_VERSION_STAGE_CHANGED,
        timestamp=ts,
        version=row.version,
        payload={
            "from_stage": row.current_stage,
            "to_stage": stage,
            "run_id": row.run_id,
            "storage_location": row.storage_location or row.source,
            "actor": user_id,
            "reason": reason,
            **(extra or {}),
        },
    )


def transition_model_version_stage(
    session: Session,
    name: str,
    version: str | int,
    stage: str,
    archive_existing_versions: bool = False,
    *,
    reason: str | None = None,
    user_id: str | None = None,
) -> ModelVersion:
    """Move a version to ``stage``; with ``archive_existing_versions`` the other holders of that
    stage move to Archived in the same transaction (valid for Staging and Production only)."""
    try:
        stage = canonical_stage(stage)
    except ValueError as exc:
        raise InvalidParameterValue(str(exc)) from exc
    if archive_existing_versions and stage not in ACTIVE_STAGES:
        raise InvalidParameterValue(
            f"Model version transition cannot archive existing model versions because '{stage}' is not "
            f"an Active stage. Valid stages are {', '.join(ACTIVE_STAGES)}"
        )
    model = model_row(session, name, lock=True)
    row = version_row(session, model, version)
    _enforce(session, model, row, stage)
    ts = now_ms()
    others: list[Row[Any]] = []
    if archive_existing_versions:
        others = list(
            session.execute(
                select(VERSIONS)
                .where(
                    VERSIONS.c.model_id == model.model_id,
                    VERSIONS.c.current_stage == stage,
                    VERSIONS.c.version != row.version,
                )
                .order_by(VERSIONS.c.version)
            )
        )
    archived = [str(o.version) for o in others]
    if row.current_stage != stage or archived:
        _set_stage(
            session,
            model,
            row,
            stage,
            ts,
            user_id=user_id,
            reason=reason,
            extra={"archived_versions": archived},
        )
    for other in others:
        why = f"archive_existing_versions: version {row.version} moved to {stage}"
        _set_stage(session, model, other, STAGE_ARCHIVED, ts, user_id=user_id, reason=why)
    touch_model(session, model.model_id, ts)
    return _entity(session, model, row.version)


# -- aliases ----------------------------------------------------------------------------------
def _alias_change(
    session: Session, model: Row[Any], alias: str, old: int | None, new: int | None, *,
    user_id: str | None, reason: str | None,
) -> None:  # fmt: skip
    ts = now_ms()
    events.add_history(
        session, model.model_id, model.name, HistoryKind.ALIAS, timestamp=ts, version=new if new else old,
        alias=alias, from_value=None if old is None else str(old), to_value=None if new is None else str(new),
        user_id=user_id, reason=reason,
    )  # fmt: skip
    events.add_event(
        session,
        model.model_id,
        model.name,
        RegistryEventType.ALIAS_MOVED if new is not None else RegistryEventType.ALIAS_DELETED,
        timestamp=ts,
        version=new if new is not None else old,
        payload={
            "alias": alias,
            "from_version": None if old is None else str(old),
            "to_version": None if new is None else str(new),
            "actor": user_id,
            "reason": reason,
        },
    )
    touch_model(session, model.model_id, ts)


def set_registered_model_alias(
    session: Session,
    name: str,
    alias: str,
    version: str | int,
    *,
    reason: str | None = None,
    user_id: str | None = None,
) -> None:
    """Point ``alias`` at ``version`` (moving it if it exists); gated by a policy on ``@alias``."""
    check_alias_name(alias)
    model = model_row(session, name, lock=True)
    row = version_row(session, model, version)
    old = session.execute(
        select(ALIASES.c.version).where(ALIASES.c.model_id == model.model_id, ALIASES.c.alias == alias)
    ).scalar()
    if old == row.version:
        return
    _enforce(session, model, row, "@" + alias)
    session.execute(delete(ALIASES).where(ALIASES.c.model_id == model.model_id, ALIASES.c.alias == alias))
    session.execute(insert(ALIASES).values(model_id=model.model_id, alias=alias, version=row.version))
    _alias_change(session, model, alias, old, row.version, user_id=user_id, reason=reason)


def delete_registered_model_alias(
    session: Session, name: str, alias: str, *, reason: str | None = None, user_id: str | None = None
) -> None:
    """Remove ``alias``; a missing alias is not an error (MLflow's SQL store)."""
    check_alias_name(alias)
    model = model_row(session, name, lock=True)
    old = session.execute(
        select(ALIASES.c.version).where(ALIASES.c.model_id == model.model_id, ALIASES.c.alias == alias)
    ).scalar()
    if old is None:
        return
    session.execute(delete(ALIASES).where(ALIASES.c.model_id == model.model_id, ALIASES.c.alias == alias))
    _alias_change(session, model, alias, old, None, user_id=user_id, reason=reason)


def get_model_version_by_alias(session: Session, name: str, alias: str) -> ModelVersion:
    """The version ``alias`` points at; ``latest`` (any case) is the highest live version."""
    check_alias_name(alias, for_write=False)
    model = model_row(session, name)
    if alias.lower() == "latest":
        number = session.execute(
            select(func.max(VERSIONS.c.version)).where(
                VERSIONS.c.model_id == model.model_id, VERSIONS.c.current_stage != STAGE_DELETED_INTERNAL
            )
        ).scalar()
    else:
        number = session.execute(
            select(ALIASES.c.version).where(ALIASES.c.model_id == model.model_id, ALIASES.c.alias == alias)
        ).scalar()
    if number is None:
        raise InvalidParameterValue(f"Registered model alias {alias} not found.")
    return _entity(session, model, parse_version(number))
