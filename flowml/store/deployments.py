"""Deployment records: rows written by the deployment flow, read by ``flowml deploy`` and the server.

Functions take a ``Session`` and never commit (the caller's ``Database.write`` does). They return plain
dicts (the ``deployments`` columns, ``details`` decoded): the public type lives above the store, in
:mod:`flowml.deploy.records`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.store.deploy_tables import DeploymentRow
from flowml.store.tables import table_of

__all__ = [
    "STATUSES",
    "create_deployment",
    "get_deployment",
    "list_deployments",
    "update_deployment",
]

#: PENDING → SERVING | FAILED | SKIPPED; SERVING → SUPERSEDED (another record took over) | STOPPED.
STATUSES = ("PENDING", "SERVING", "FAILED", "SKIPPED", "SUPERSEDED", "STOPPED")
_T = table_of(DeploymentRow)
_MUTABLE = {
    "status", "event_id", "flow_run_id", "bento_tag", "endpoint_url", "error", "details",
    "serving_since", "finished_time", "version", "actor",
}  # fmt: skip


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _as_dict(row: Row[Any]) -> dict[str, Any]:
    out = dict(row._mapping)
    out["details"] = json.loads(out["details"]) if out.get("details") else {}
    return out


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise InvalidParameterValue(f"Invalid deployment status {status!r}: one of {', '.join(STATUSES)}")


def create_deployment(
    session: Session,
    name: str,
    version: str,
    target: str,
    *,
    status: str = "PENDING",
    actor: str | None = None,
    event_id: int | None = None,
    flow_run_id: str | None = None,
    bento_tag: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    _check_status(status)
    now = _now_ms()
    values = {
        "name": name, "version": str(version), "target": target, "status": status, "actor": actor,
        "event_id": event_id, "flow_run_id": flow_run_id, "bento_tag": bento_tag,
        "details": json.dumps(dict(details or {}), default=str), "created_time": now, "updated_time": now,
    }  # fmt: skip
    new_id = session.execute(insert(_T).values(**values).returning(_T.c.id)).scalar_one()
    return get_deployment(session, int(new_id))


def get_deployment(session: Session, deployment_id: int) -> dict[str, Any]:
    row = session.execute(select(_T).where(_T.c.id == deployment_id)).first()
    if row is None:
        raise ResourceDoesNotExist(f"Deployment record {deployment_id} not found")
    return _as_dict(row)


def update_deployment(
    session: Session, deployment_id: int, *, merge_details: bool = True, **fields: Any
) -> dict[str, Any]:
    """Set ``fields`` on a record. Becoming SERVING supersedes the other SERVING records of the same
    name and target (in this transaction: there is at most one live record per name and target)."""
    unknown = set(fields) - _MUTABLE
    if unknown:
        raise InvalidParameterValue(f"Cannot update deployment fields {sorted(unknown)}")
    current = get_deployment(session, deployment_id)
    now = _now_ms()
    values = dict(fields)
    if "status" in values:
        _check_status(values["status"])
        if values["status"] in ("FAILED", "SKIPPED", "SUPERSEDED", "STOPPED"):
            values.setdefault("finished_time", now)
    if "details" in values:
        merged = (
            {**current["details"], **dict(values["details"] or {})} if merge_details else values["details"]
        )
        values["details"] = json.dumps(merged or {}, default=str)
    if values.get("status") == "SERVING":
        values.setdefault("serving_since", now)
        session.execute(
            update(_T)
            .where(_T.c.name == current["name"], _T.c.target == current["target"])
            .where(_T.c.status == "SERVING", _T.c.id != deployment_id)
            .values(status="SUPERSEDED", updated_time=now, finished_time=now)
        )
    session.execute(update(_T).where(_T.c.id == deployment_id).values(**values, updated_time=now))
    return get_deployment(session, deployment_id)


def list_deployments(
    session: Session,
    name: str | None = None,
    status: str | None = None,
    max_results: int = 100,
) -> list[dict[str, Any]]:
    """Newest first."""
    query = select(_T).order_by(_T.c.id.desc()).limit(max_results)
    if name is not None:
        query = query.where(_T.c.name == name)
    if status is not None:
        query = query.where(_T.c.status == status)
    return [_as_dict(r) for r in session.execute(query)]
