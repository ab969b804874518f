"""What runs used and produced: MLflow's ``runs/log-inputs`` (datasets and, MLflow 3, logged models)
and a run's ``inputs`` / ``outputs`` as the REST API returns them.

A dataset is stored once per experiment, name and digest (the first one logged keeps its schema
and profile, as in MLflow); a run lists each dataset or model once (logging it again changes nothing).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from flowml.entities import Dataset, DatasetInput, RunLinks
from flowml.exceptions import InvalidParameterValue
from flowml.store._model_points import existing_models, missing_model
from flowml.store.tables import (
    DatasetRow,
    RunDatasetInputRow,
    RunModelInputRow,
    RunOutputRow,
    insert_on_conflict,
    table_of,
)
from flowml.store.tracking import get_run_row

__all__ = ["load_inputs", "load_links", "log_inputs"]

_DATASETS = table_of(DatasetRow)
_INPUTS = table_of(RunDatasetInputRow)
_MODEL_INPUTS = table_of(RunModelInputRow)
_OUTPUTS = table_of(RunOutputRow)
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


def log_inputs(
    session: Session, run_id: str, inputs: Sequence[DatasetInput], model_ids: Sequence[str] = ()
) -> None:
    """Record ``inputs`` (datasets) and ``model_ids`` (logged models, deleted ones too, as MLflow) for
    the (active) run ``run_id``; everything is checked before anything is written."""
    for item in inputs:
        _check(item)
    run = get_run_row(session, run_id, for_write=True)
    models = list(dict.fromkeys(model_ids))
    if models:
        unknown = missing_model(models, existing_models(session, models))
        if unknown is not None:
            raise unknown
        session.execute(
            insert_on_conflict(session, _MODEL_INPUTS).on_conflict_do_nothing(),
            [{"run_id": run_id, "model_id": model_id} for model_id in models],
        )
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


def load_links(session: Session, run_ids: Sequence[str], *, model_inputs: bool = True) -> dict[str, RunLinks]:
    """The inputs (datasets and, if ``model_inputs``, logged models) and outputs (logged models) of
    each of ``run_ids`` that has any: up to three statements per chunk of runs."""
    datasets = load_inputs(session, run_ids)
    used: dict[str, list[str]] = {}
    made: dict[str, list[tuple[str, int]]] = {}
    ids = list(dict.fromkeys(run_ids))
    mi, out = _MODEL_INPUTS.c, _OUTPUTS.c
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        if model_inputs:
            for run_id, model_id in session.execute(
                select(mi.run_id, mi.model_id).where(mi.run_id.in_(chunk)).order_by(mi.run_id, mi.model_id)
            ):
                used.setdefault(run_id, []).append(model_id)
        for run_id, model_id, step in session.execute(
            select(out.run_id, out.model_id, out.step)
            .where(out.run_id.in_(chunk))
            .order_by(out.run_id, out.step, out.model_id)
        ):
            made.setdefault(run_id, []).append((model_id, int(step)))
    return {
        run_id: RunLinks(
            tuple(datasets.get(run_id, ())), tuple(used.get(run_id, ())), tuple(made.get(run_id, ()))
        )
        for run_id in ids
        if run_id in datasets or run_id in used or run_id in made
    }
