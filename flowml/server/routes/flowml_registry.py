"""flowml's registry extensions under ``/api/flowml/registry``: audit history, the event outbox,
delivery attempts and promotion policies (MLflow has none of these)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from flowml.server.deps import BackendDep

router = APIRouter(prefix="/registry", tags=["flowml registry"])
#: ``GET /api/flowml/events``: the registry's durable event log (same data as /registry/events).
events_router = APIRouter(tags=["flowml registry"])


def as_json(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


class Policy(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)
    policy: dict[str, Any] | None = None


class Attempt(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event_id: int
    success: bool
    started_time: int
    finished_time: int | None = None
    target: str | None = None
    error: str | None = None
    details: dict[str, Any] | None = None
    retry_at: int | None = None


@router.get("/history")
def history(
    backend: BackendDep, name: str = Query(min_length=1), version: str | None = None
) -> dict[str, Any]:
    return {"history": [as_json(h) for h in backend.get_registry_history(name, version)]}


@events_router.get("/events")
@router.get("/events")
def events(
    backend: BackendDep,
    after_id: int | None = None,
    name: str | None = None,
    max_results: int = Query(default=100, ge=1, le=10_000),
    pending_only: bool = False,
) -> dict[str, Any]:
    found = backend.list_registry_events(after_id, name, max_results, pending_only)
    return {"events": [as_json(e) for e in found]}


@router.get("/events/pending")
def pending(backend: BackendDep, max_results: int = Query(default=100, ge=1, le=10_000)) -> dict[str, Any]:
    return {"events": [as_json(e) for e in backend.pending_registry_events(max_results)]}


@router.get("/events/attempts")
def attempts(backend: BackendDep, event_id: int) -> dict[str, Any]:
    return {"attempts": [as_json(a) for a in backend.list_registry_event_attempts(event_id)]}


@router.post("/events/attempts")
def record_attempt(body: Attempt, backend: BackendDep) -> dict[str, Any]:
    event = backend.record_registry_event_attempt(
        body.event_id,
        body.success,
        body.started_time,
        body.finished_time,
        body.target,
        body.error,
        body.details,
        body.retry_at,
    )
    return {"event": as_json(event)}


@router.get("/policy")
def get_policy(backend: BackendDep, name: str = Query(min_length=1)) -> dict[str, Any]:
    return {"policy": backend.get_promotion_policy(name)}


@router.post("/policy")
def set_policy(body: Policy, backend: BackendDep) -> dict[str, Any]:
    backend.set_promotion_policy(body.name, body.policy)
    return {}


@router.get("/check-promotion")
def check_promotion(
    backend: BackendDep, name: str = Query(min_length=1), version: str = Query(min_length=1), target: str = ""
) -> dict[str, Any]:
    return {"report": as_json(backend.check_promotion(name, version, target))}
