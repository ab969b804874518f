"""The model registry: repository functions ``f(session, ...) -> entity`` with MLflow's semantics.

Each function runs inside the caller's transaction (``Database.write`` / ``read``); none commits.
Writes that change a stage or an alias, or create or delete a version, first lock the registered
model's row (:func:`flowml.store._registry_read.model_row` with ``lock=True``), then write the change,
its audit row and its outbox event; so archive-existing transitions are serial per model (never two
versions left in Production) and each model's events are in commit order.

Gated promotions (a policy tag on the model, see :mod:`flowml.store._registry_policy`) are checked
inside the same transaction; a refusal raises :class:`PromotionRefused` (INVALID_STATE with the
report) and the caller audits it in a separate transaction with :func:`record_refusal`.
Search lives in :mod:`flowml.store._registry_search`; events in :mod:`flowml.store._registry_events`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flowml.entities import PagedList
from flowml.entities_registry import (
    STAGE_DELETED_INTERNAL,
    EventAttempt,
    GateReport,
    HistoryKind,
    RegisteredModel,
    RegistryEvent,
    RegistryEventType,
    StageTransition,
)
from flowml.exceptions import ResourceAlreadyExists
from flowml.store import _registry_events as events
from flowml.store._registry_policy import POLICY_TAG, parse_policy
from flowml.store._registry_read import (
    MAX_DESCRIPTION_LENGTH,
    MAX_REGISTRY_TAG_VALUE_LENGTH,
    MODEL_TAGS,
    MODELS,
    VERSIONS,
    check_description,
    check_tags,
    load_models,
    model_row,
    name_key,
    parse_version,
    validate_model_name,
)
from flowml.store._registry_search import search_registered_model_ids
from flowml.store._registry_stages import (
    PromotionRefused,
    check_alias_name,
    check_promotion,
    delete_registered_model_alias,
    get_model_version_by_alias,
    set_registered_model_alias,
    transition_model_version_stage,
)
from flowml.store._registry_versions import (
    create_model_version,
    delete_model_version,
    delete_model_version_tag,
    get_latest_versions,
    get_model_version,
    get_model_version_download_uri,
    resolve_model_uri,
    search_model_versions,
    set_model_version_tag,
    update_model_version,
)
from flowml.store.tracking import now_ms
from flowml.validation import validate_key

__all__ = [
    "MAX_DESCRIPTION_LENGTH",
    "MAX_REGISTRY_TAG_VALUE_LENGTH",
    "POLICY_TAG",
    "PromotionRefused",
    "check_alias_name",
    "check_promotion",
    "create_model_version",
    "create_registered_model",
    "delete_model_version",
    "delete_model_version_tag",
    "delete_registered_model",
    "delete_registered_model_alias",
    "delete_registered_model_tag",
    "get_latest_versions",
    "get_model_version",
    "get_model_version_by_alias",
    "get_model_version_download_uri",
    "get_promotion_policy",
    "get_registered_model",
    "get_registry_history",
    "list_event_attempts",
    "list_registry_events",
    "model_id_of",
    "outbox_stats",
    "pending_registry_events",
    "record_event_attempt",
    "record_refusal",
    "rename_registered_model",
    "resolve_model_uri",
    "search_model_versions",
    "search_registered_models",
    "set_model_version_tag",
    "set_promotion_policy",
    "set_registered_model_alias",
    "set_registered_model_tag",
    "transition_model_version_stage",
    "update_model_version",
    "update_registered_model",
]


def model_id_of(session: Session, name: str) -> int:
    return int(model_row(session, name).model_id)


def _model(session: Session, row: Row[Any]) -> RegisteredModel:
    return load_models(session, [row])[0]


def _conflict_check(session: Session, name: str, exclude_id: int | None = None) -> None:
    stmt = select(MODELS.c.model_id, MODELS.c.name).where(MODELS.c.name_key == name_key(name))
    existing = session.execute(stmt).first()
    if existing is None or existing.model_id == exclude_id:
        return
    if existing.name == name:
        raise ResourceAlreadyExists(f"Registered Model (name={name}) already exists.")
    raise ResourceAlreadyExists(
        f"Registered Model (name={name}) conflicts with the existing model '{existing.name}': "
        "names may not differ only in letter case or Unicode form."
    )


# -- registered models ------------------------------------------------------------------------
def create_registered_model(
    session: Session,
    name: str,
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
    user_id: str | None = None,
) -> RegisteredModel:
    validate_model_name(name)
    checked = check_tags(tags)
    if POLICY_TAG in checked:
        parse_policy(checked[POLICY_TAG])
    check_description(description)
    _conflict_check(session, name)
    ts = now_ms()
    try:
        result = cast(
            "CursorResult[Any]",
            session.execute(
                insert(MODELS).values(
                    name=name,
                    name_key=name_key(name),
                    creation_time=ts,
                    last_updated_time=ts,
                    description=description,
                    user_id=user_id,
                )
            ),
        )
    except IntegrityError as exc:  # a concurrent create won the race
        raise ResourceAlreadyExists(f"Registered Model (name={name}) already exists.") from exc
    model_id = result.inserted_primary_key[0]  # type: ignore[index]
    if checked:
        session.execute(
            insert(MODEL_TAGS), [{"model_id": model_id, "key": k, "value": v} for k, v in checked.items()]
        )
    return _model(session, model_row(session, name))


def get_registered_model(session: Session, name: str) -> RegisteredModel:
    return _model(session, model_row(session, name))


def rename_registered_model(
    session: Session, name: str, new_name: str, user_id: str | None = None
) -> RegisteredModel:
    model = model_row(session, name, lock=True)
    validate_model_name(new_name)
    if new_name == name:
        return _model(session, model)
    _conflict_check(session, new_name, exclude_id=model.model_id)
    ts = now_ms()
    session.execute(
        update(MODELS)
        .where(MODELS.c.model_id == model.model_id)
        .values(name=new_name, name_key=name_key(new_name), last_updated_time=ts)
    )
    events.add_event(
        session,
        model.model_id,
        new_name,
        RegistryEventType.REGISTERED_MODEL_RENAMED,
        timestamp=ts,
        version=None,
        payload={"from_name": name, "to_name": new_name, "actor": user_id},
    )
    return _model(session, model_row(session, new_name))


def update_registered_model(session: Session, name: str, description: str | None) -> RegisteredModel:
    model = model_row(session, name)
    session.execute(
        update(MODELS)
        .where(MODELS.c.model_id == model.model_id)
        .values(description=check_description(description), last_updated_time=now_ms())
    )
    return _model(session, model_row(session, name))


def delete_registered_model(session: Session, name: str, user_id: str | None = None) -> None:
    """Hard delete (MLflow): versions, tags and aliases go too; history and events stay."""
    model = model_row(session, name, lock=True)
    versions = session.execute(
        select(VERSIONS.c.version)
        .where(VERSIONS.c.model_id == model.model_id, VERSIONS.c.current_stage != STAGE_DELETED_INTERNAL)
        .order_by(VERSIONS.c.version)
    ).scalars()
    events.add_event(
        session,
        model.model_id,
        name,
        RegistryEventType.REGISTERED_MODEL_DELETED,
        timestamp=now_ms(),
        version=None,
        payload={"deleted_versions": [str(v) for v in versions], "actor": user_id},
    )
    session.execute(delete(MODELS).where(MODELS.c.model_id == model.model_id))


def set_registered_model_tag(session: Session, name: str, key: str, value: str) -> None:
    checked = check_tags({key: value})
    if key == POLICY_TAG:
        parse_policy(checked[key])
    model = model_row(session, name)
    session.execute(
        delete(MODEL_TAGS).where(MODEL_TAGS.c.model_id == model.model_id, MODEL_TAGS.c.key == key)
    )
    session.execute(insert(MODEL_TAGS).values(model_id=model.model_id, key=key, value=checked[key]))


def delete_registered_model_tag(session: Session, name: str, key: str) -> None:
    """Deleting a missing key is not an error (MLflow's SQL store)."""
    validate_key(key, "tag")
    model = model_row(session, name)
    session.execute(
        delete(MODEL_TAGS).where(MODEL_TAGS.c.model_id == model.model_id, MODEL_TAGS.c.key == key)
    )


def search_registered_models(
    session: Session,
    filter_string: str | None = None,
    max_results: int = 100,
    order_by: Sequence[str] | None = None,
    page_token: str | None = None,
) -> PagedList[RegisteredModel]:
    ids, token = search_registered_model_ids(session, filter_string, max_results, order_by, page_token)
    rows = {r.model_id: r for r in session.execute(select(MODELS).where(MODELS.c.model_id.in_(ids)))}
    return PagedList(load_models(session, [rows[i] for i in ids if i in rows]), token)


# -- refusals ---------------------------------------------------------------------------------
def record_refusal(
    session: Session, report: GateReport, user_id: str | None = None, reason: str | None = None
) -> None:
    """Audit a refused promotion (called in its own transaction: the refused one rolled back)."""
    model = model_row(session, report.name)
    target = report.target
    events.add_history(
        session, model.model_id, model.name, HistoryKind.REFUSED, timestamp=now_ms(),
        version=parse_version(report.version), to_value=target[:64],
        alias=target[1:] if target.startswith("@") else None,
        user_id=user_id, reason=reason, details=report.to_dict(),
    )  # fmt: skip


# -- promotion policy -------------------------------------------------------------------------
def set_promotion_policy(session: Session, name: str, policy: Mapping[str, Any] | str | None) -> None:
    """Store (validated, as canonical JSON in the model tag ``flowml.promotion_policy``) or clear."""
    if policy is None:
        delete_registered_model_tag(session, name, POLICY_TAG)
        return
    set_registered_model_tag(session, name, POLICY_TAG, parse_policy(policy).to_json())


def get_promotion_policy(session: Session, name: str) -> dict[str, Any] | None:
    model = model_row(session, name)
    text = session.execute(
        select(MODEL_TAGS.c.value).where(
            MODEL_TAGS.c.model_id == model.model_id, MODEL_TAGS.c.key == POLICY_TAG
        )
    ).scalar()
    if text is None:
        return None
    policy = parse_policy(text)
    return {"to": list(policy.targets), "rules": [dict(r) for r in policy.rules]}


# -- history and events -----------------------------------------------------------------------
def get_registry_history(
    session: Session, name: str, version: str | int | None = None
) -> list[StageTransition]:
    """Audit rows of model ``name`` (oldest first): creations, stage and alias moves, refusals."""
    model = model_row(session, name)
    return events.list_history(session, model.model_id, None if version is None else parse_version(version))


def list_registry_events(
    session: Session,
    after_id: int | None = None,
    name: str | None = None,
    max_results: int = 1000,
    pending_only: bool = False,
) -> list[RegistryEvent]:
    model_id = None if name is None else model_id_of(session, name)
    return events.list_events(
        session, after_id=after_id, model_id=model_id, max_results=max_results, pending_only=pending_only
    )


def pending_registry_events(
    session: Session, max_results: int = 100, now: int | None = None
) -> list[RegistryEvent]:
    return events.pending_events(session, now_ms() if now is None else now, max_results)


def record_event_attempt(
    session: Session,
    event_id: int,
    *,
    success: bool,
    started_time: int,
    finished_time: int | None = None,
    target: str | None = None,
    error: str | None = None,
    details: Mapping[str, Any] | None = None,
    retry_at: int | None = None,
) -> RegistryEvent:
    return events.record_attempt(
        session, event_id, success=success, started_time=started_time,
        finished_time=now_ms() if finished_time is None else finished_time,
        target=target, error=error, details=details, retry_at=retry_at,
    )  # fmt: skip


def list_event_attempts(session: Session, event_id: int) -> list[EventAttempt]:
    return events.list_attempts(session, event_id)


def outbox_stats(session: Session) -> events.OutboxStats:
    """Undelivered and failing outbox events and delivery attempts by outcome (for ``/metrics``)."""
    return events.outbox_stats(session)
