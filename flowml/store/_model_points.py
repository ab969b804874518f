"""Metric points of MLflow 3 logged models inside ``log_batch`` (points sent with a ``model_id``).

A model's point is also a point of the run that logged it, so it travels in the run's
:class:`~flowml.store.run_data.PreparedBatch` and is written in the same group transaction:
a batch naming a model that does not exist is refused before anything of it is written, like a
batch for an unknown run. Soft-deleted models still take points (their rows exist), as in MLflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowml.entities import ModelMetric
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.store.tables import LoggedModelMetricRow, LoggedModelRow, insert_on_conflict, table_of
from flowml.validation import validate_key

__all__ = ["check_points", "existing_models", "insert_points", "missing_model"]

_METRICS = table_of(LoggedModelMetricRow)
_MODELS = table_of(LoggedModelRow)
# Column sizes (the table's): what does not fit is a clear 400, not a database error.
_LIMITS = {"model_id": 64, "dataset_name": 500, "dataset_digest": 36}


def check_points(points: Sequence[ModelMetric]) -> tuple[ModelMetric, ...]:
    """``points`` validated without the database (keys, ids and dataset fields)."""
    for point in points:
        validate_key(point.key, "metric")
        if not isinstance(point.model_id, str) or not point.model_id:
            raise InvalidParameterValue("A metric's model_id must be a non-empty string")
        for field, limit in _LIMITS.items():
            value = getattr(point, field)
            if value is not None and len(value) > limit:
                raise InvalidParameterValue(f"A metric's {field} is longer than {limit} characters")
    return tuple(points)


def existing_models(session: Session, model_ids: Iterable[str]) -> set[str]:
    """Which of ``model_ids`` are logged models (whatever their lifecycle stage)."""
    ids = sorted(set(model_ids))
    if not ids:
        return set()
    return set(session.execute(select(_MODELS.c.model_id).where(_MODELS.c.model_id.in_(ids))).scalars())


def missing_model(model_ids: Iterable[str], existing: set[str]) -> ResourceDoesNotExist | None:
    """The error for the first of ``model_ids`` not in ``existing``, if any."""
    for model_id in model_ids:
        if model_id not in existing:
            return ResourceDoesNotExist(f"Logged model with ID '{model_id}' not found.")
    return None


def insert_points(session: Session, run_id: str, points: Sequence[ModelMetric]) -> None:
    """Store ``points`` as logged by ``run_id``; a point stored already is kept once."""
    rows: list[dict[str, Any]] = []
    for point in points:
        is_nan = point.value != point.value
        rows.append(
            {
                "model_id": point.model_id,
                "key": point.key,
                "step": point.step,
                "timestamp": point.timestamp,
                "run_id": run_id,
                "dataset_name": point.dataset_name or "",
                "dataset_digest": point.dataset_digest or "",
                "value": 0.0 if is_nan else point.value,
                "is_nan": is_nan,
            }
        )
    if rows:
        session.execute(insert_on_conflict(session, _METRICS).on_conflict_do_nothing(), rows)
