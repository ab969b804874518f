"""Datasets runs used (MLflow's ``runs/log-inputs`` and a run's ``inputs.dataset_inputs``).

A dataset is stored once per experiment, name and digest (the first one logged keeps its schema
and profile, as in MLflow); a run lists each dataset once (logging it again changes nothing).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from flowml.entities import Dataset, DatasetInput
from flowml.exceptions import InvalidParameterValue
from flowml.store.tables import DatasetRow, RunDatasetInputRow, insert_on_conflict, table_of
from flowml.store.tracking import get_run_row

__all__ = ["load_inputs", "log_inputs"]

_DATASETS = table_of(DatasetRow)
_INPUTS = table_of(RunDatasetInputRow)
_CHUNK = 500  # run ids per IN (...) list

# MLflow's limits (characters).
_LIMITS = {
    "name": 500,
    "digest": 36,
    "source_type": 36,
    "source": 65535,
    "schema": 1048575,
    "profile": 16777215,
}
_TAG_KEY_LIMIT, _TAG_VALUE_LIMIT = 255, 500


def _check(item: DatasetInput) -> None:
    dataset = item.dataset
    for field, limit in _LIMITS.items():
        value = getattr(dataset, field)
        required = field not in ("schema", "profile")
        if value is None or value == "":
            if required:
                raise InvalidParameterValue(f"Dataset {field} must be a non-empty string")
            continue
        if not isinstance(value, str):
            raise InvalidParameterValue(f"Dataset {field} must be a string")
        if len(value) > limit:
            raise InvalidParameterValue(f"Dataset {field} is longer than {limit} characters")
    for key, value in item.tags.items():
        if not isinstance(key, str) or not key or len(key) > _TAG_KEY_LIMIT:
            raise InvalidParameterValue(f"Input tag key must be 1 to {_TAG_KEY_LIMIT} characters")
        if not isinstance(value, str) or len(value) > _TAG_VALUE_LIMIT:
            raise InvalidParameterValue(
                f"Input tag value of {key!r} must be at most {_TAG_VALUE_LIMIT} characters"
            )


def log_inputs(session: Session, run_id: str, inputs: Sequence[DatasetInput]) -> None:
    """Record ``inputs`` for the (active) run ``run_id``; every input is checked before any is written."""
    for item in inputs:
        _check(item)
    run = get_run_row(session, run_id, for_write=True)
    for item in inputs:
        d = item.dataset
        key = (
            _DATASETS.c.experiment_id == run.experiment_id,
            _DATASETS.c.name == d.name,
            _DATASETS.c.digest == d.digest,
        )
        session.execute(
            insert_on_conflict(session, _DATASETS)
            .values(
                dataset_id=uuid.uuid4().hex,
                experiment_id=run.experiment_id,
                name=d.name,
                digest=d.digest,
                source_type=d.source_type,
                source=d.source,
                schema=d.schema or None,
                profile=d.profile or None,
            )
            .on_conflict_do_nothing(index_elements=["experiment_id", "name", "digest"])
        )
        dataset_id = session.execute(select(_DATASETS.c.dataset_id).where(*key)).scalar_one()
        session.execute(
            insert_on_conflict(session, _INPUTS)
            .values(run_id=run_id, dataset_id=dataset_id, tags=orjson.dumps(dict(item.tags)).decode())
            .on_conflict_do_nothing(index_elements=["run_id", "dataset_id"])
        )


def load_inputs(session: Session, run_ids: Sequence[str]) -> dict[str, list[DatasetInput]]:
    """The dataset inputs of each of ``run_ids`` that has any (by dataset name, then digest)."""
    found: dict[str, list[DatasetInput]] = {}
    ids = list(dict.fromkeys(run_ids))
    d, i = _DATASETS.c, _INPUTS.c
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(i.run_id, i.tags, d.name, d.digest, d.source_type, d.source, d.schema, d.profile)
            .join_from(_INPUTS, _DATASETS, d.dataset_id == i.dataset_id)
            .where(i.run_id.in_(ids[start : start + _CHUNK]))
            .order_by(i.run_id, d.name, d.digest)
        ).all()
        for run_id, tags, name, digest, source_type, source, schema, profile in rows:
            dataset = Dataset(name, digest, source_type, source, schema, profile)
            found.setdefault(run_id, []).append(DatasetInput(dataset, orjson.loads(tags)))
    return found
