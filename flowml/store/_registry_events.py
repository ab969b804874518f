"""The registry's audit history and event outbox: rows written in the caller's transaction.

Ordering guarantee: every function in :mod:`flowml.store.registry` that writes history or events
first locks the registered model's row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite write
transactions are ``BEGIN IMMEDIATE``, so they are serial anyway). Two transactions that touch the
same model therefore commit one after the other, and **per model, event id order is commit
order**. Across models, ids are assigned at insert time, so a lower id of another model may become
visible after a higher one: a dispatcher must scan for undelivered events
(:func:`pending_events`), or keep one cursor per model, never one global "after id" cursor.

Delivery seam (the dispatcher is not here): :func:`pending_events` hands out, per model, the
undelivered events up to (not past) the first one that is not yet due for a retry, in id order;
:func:`record_attempt` records each attempt and its outcome and marks the event delivered or
schedules the next try.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from flowml.entities_registry import EventAttempt, RegistryEvent, StageTransition
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.store.registry_tables import (
    RegistryEventAttemptRow,
    RegistryEventRow,
    RegistryHistoryRow,
    table_of,
)

__all__ = [
    "OutboxStats",
    "add_event",
    "add_history",
    "list_attempts",
    "list_events",
    "list_history",
    "outbox_stats",
    "pending_events",
    "record_attempt",
]

_HISTORY = table_of(RegistryHistoryRow)
_EVENTS = table_of(RegistryEventRow)
_ATTEMPTS = table_of(RegistryEventAttemptRow)

MAX_EVENTS_PAGE = 10_000


def _json(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(dict(value), sort_keys=True, default=str)


def _version_str(version: int | None) -> str | None:
    return None if version is None else str(version)


def add_history(
    session: Session,
    model_id: int,
    name: str,
    kind: str,
    *,
    timestamp: int,
    version: int | None = None,
    from_value: str | None = None,
    to_value: str | None = None,
    alias: str | None = None,
    user_id: str | None = None,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    session.execute(
        insert(_HISTORY).values(
            model_id=model_id,
            name=name,
            kind=kind,
            version=version,
            alias=alias,
            from_value=from_value,
            to_value=to_value,
            user_id=user_id,
            reason=reason,
            details=_json(details),
            timestamp=timestamp,
        )
    )


def add_event(
    session: Session,
    model_id: int,
    name: str,
    event_type: str,
    *,
    timestamp: int,
    version: int | None,
    payload: Mapping[str, Any],
) -> None:
    body = {"event_type": event_type, "name": name, "version": _version_str(version), **payload}
    session.execute(
        insert(_EVENTS).values(
            event_type=event_type,
            model_id=model_id,
            name=name,
            version=version,
            payload=_json(body),
            created_time=timestamp,
            attempts=0,
        )
    )


def _to_transition(row: Row[Any]) -> StageTransition:
    return StageTransition(
        id=row.id,
        name=row.name,
        kind=row.kind,
        version=_version_str(row.version),
        from_value=row.from_value,
        to_value=row.to_value,
        timestamp=row.timestamp,
        user_id=row.user_id,
        reason=row.reason,
        alias=row.alias,
        details=json.loads(row.details) if row.details else {},
    )


def list_history(session: Session, model_id: int, version: int | None = None) -> list[StageTransition]:
    """The audit rows of one model (oldest first), optionally of one version."""
    stmt = select(_HISTORY).where(_HISTORY.c.model_id == model_id)
    if version is not None:
        stmt = stmt.where(_HISTORY.c.version == version)
    return [_to_transition(r) for r in session.execute(stmt.order_by(_HISTORY.c.id))]


def _to_event(row: Row[Any]) -> RegistryEvent:
    return RegistryEvent(
        id=row.id,
        event_type=row.event_type,
        name=row.name,
        version=_version_str(row.version),
        payload=json.loads(row.payload),
        created_time=row.created_time,
        delivered_time=row.delivered_time,
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_time=row.next_attempt_time,
    )


def _check_limit(max_results: int) -> None:
    if (
        isinstance(max_results, bool)
        or not isinstance(max_results, int)
        or not 0 < max_results <= MAX_EVENTS_PAGE
    ):
        raise InvalidParameterValue(
            f"max_results must be between 1 and {MAX_EVENTS_PAGE}, got {max_results!r}"
        )


def list_events(
    session: Session,
    *,
    after_id: int | None = None,
    model_id: int | None = None,
    max_results: int = 1000,
    pending_only: bool = False,
) -> list[RegistryEvent]:
    """Outbox rows in id order (= commit order per model), after ``after_id``, of one model or all."""
    _check_limit(max_results)
    stmt = select(_EVENTS)
    if after_id is not None:
        stmt = stmt.where(_EVENTS.c.id > int(after_id))
    if model_id is not None:
        stmt = stmt.where(_EVENTS.c.model_id == model_id)
    if pending_only:
        stmt = stmt.where(_EVENTS.c.delivered_time.is_(None))
    return [_to_event(r) for r in session.execute(stmt.order_by(_EVENTS.c.id).limit(max_results))]


def pending_events(session: Session, now: int, max_results: int = 100) -> list[RegistryEvent]:
    """Undelivered events that may be delivered now, oldest first, never overtaking within a model.

    A model whose oldest undelivered event waits for its retry time (``next_attempt_time > now``)
    is blocked: none of its later events are returned, so a subscriber sees each model's events
    exactly in commit order.
    """
    _check_limit(max_results)
    due: list[RegistryEvent] = []
    blocked: set[int] = set()
    stmt = (
        select(_EVENTS)
        .where(_EVENTS.c.delivered_time.is_(None))
        .order_by(_EVENTS.c.id)
        .execution_options(yield_per=500)
    )
    for row in session.execute(stmt):
        if row.model_id in blocked:
            continue
        if row.next_attempt_time is not None and row.next_attempt_time > now:
            blocked.add(row.model_id)
            continue
        due.append(_to_event(row))
        if len(due) >= max_results:
            break
    return due


def record_attempt(
    session: Session,
    event_id: int,
    *,
    success: bool,
    started_time: int,
    finished_time: int,
    target: str | None = None,
    error: str | None = None,
    details: Mapping[str, Any] | None = None,
    retry_at: int | None = None,
) -> RegistryEvent:
    """Record one delivery attempt; mark the event delivered, or failed with its next retry time."""
    row = session.execute(select(_EVENTS).where(_EVENTS.c.id == int(event_id)).with_for_update()).first()
    if row is None:
        raise ResourceDoesNotExist(f"Registry event {event_id} not found")
    attempt = row.attempts + 1
    session.execute(
        insert(_ATTEMPTS).values(
            event_id=row.id,
            attempt=attempt,
            started_time=started_time,
            finished_time=finished_time,
            success=success,
            target=target,
            error=error,
            details=_json(details),
        )
    )
    values: dict[str, Any] = {"attempts": attempt}
    if success:
        values.update(next_attempt_time=None, last_error=None)
        if row.delivered_time is None:
            values["delivered_time"] = finished_time
    else:
        values.update(last_error=error, next_attempt_time=retry_at)
    session.execute(update(_EVENTS).where(_EVENTS.c.id == row.id).values(**values))
    updated = session.execute(select(_EVENTS).where(_EVENTS.c.id == row.id)).one()
    return _to_event(updated)


def list_attempts(session: Session, event_id: int) -> list[EventAttempt]:
    rows = session.execute(
        select(_ATTEMPTS).where(_ATTEMPTS.c.event_id == int(event_id)).order_by(_ATTEMPTS.c.attempt)
    )
    return [
        EventAttempt(
            event_id=r.event_id,
            attempt=r.attempt,
            started_time=r.started_time,
            finished_time=r.finished_time,
            success=bool(r.success),
            target=r.target,
            error=r.error,
            details=json.loads(r.details) if r.details else {},
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """The outbox at a glance (what ``/metrics`` reports)."""

    pending: int  #: undelivered events
    failing: int  #: undelivered events whose last delivery attempt failed
    oldest_pending_time: int | None  #: ``created_time`` (ms) of the oldest undelivered event
    attempts_succeeded: int  #: delivery attempts recorded as successful, all time
    attempts_failed: int  #: delivery attempts recorded as failed, all time


def outbox_stats(session: Session) -> OutboxStats:
    """Two aggregate queries: undelivered events (uses the ``delivered_time`` index) and attempts."""
    pending, failing, oldest = session.execute(
        select(func.count(), func.count(_EVENTS.c.last_error), func.min(_EVENTS.c.created_time)).where(
            _EVENTS.c.delivered_time.is_(None)
        )
    ).one()
    by_outcome = {
        bool(success): int(n)
        for success, n in session.execute(
            select(_ATTEMPTS.c.success, func.count()).group_by(_ATTEMPTS.c.success)
        )
    }
    return OutboxStats(
        pending=int(pending),
        failing=int(failing),
        oldest_pending_time=None if oldest is None else int(oldest),
        attempts_succeeded=by_outcome.get(True, 0),
        attempts_failed=by_outcome.get(False, 0),
    )
