"""What runs used and produced: MLflow's ``runs/log-inputs`` (datasets and, MLflow 3, logged models)
and a run's ``inputs`` / ``outputs`` as the REST API returns them.

A dataset is stored once per experiment, name and digest (the first one logged keeps its schema
and profile, as in MLflow); a run lists each dataset or model once (logging it again changes nothing).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import MutableSequence, Sequence

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from flowml.entities import Dataset, DatasetInput, Run, RunLinks
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

__all__ = ["load_links", "log_inputs", "with_links"]

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
    for tag in item.tags:
        key, value = tag.key, tag.value
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
            .values(run_id=run_id, dataset_id=dataset_id, tags=orjson.dumps(item.tag_dict()).decode())
            .on_conflict_do_nothing(index_elements=["run_id", "dataset_id"])
        )


# One statement for a page of runs' inputs and outputs (the ids travel as ONE parameter, as in
# ``run_load``): rows of (run id, kind, tags, name or model id, digest, source type, source, schema,
# profile, step); kind 0 = dataset input, 1 = model output, 2 = model input.
_LINK_PARTS = (
    "SELECT i.run_id, 0, i.tags, d.name, d.digest, d.source_type, d.source, d.schema, d.profile, NULL "
    "FROM j {join} run_dataset_inputs AS i ON i.run_id = j.run_id "
    "JOIN datasets AS d ON d.dataset_id = i.dataset_id",
    "SELECT o.run_id, 1, NULL, o.model_id, NULL, NULL, NULL, NULL, NULL, o.step "
    "FROM j {join} run_outputs AS o ON o.run_id = j.run_id",
    "SELECT m.run_id, 2, NULL, m.model_id, NULL, NULL, NULL, NULL, NULL, NULL "
    "FROM j {join} run_model_inputs AS m ON m.run_id = j.run_id",
)
_IDS = {
    "sqlite": "WITH j(run_id) AS (SELECT value FROM json_each(?)) ",
    "postgresql": "WITH j(run_id) AS (SELECT unnest(%s::text[])) ",
}


def load_links(session: Session, run_ids: Sequence[str], *, model_inputs: bool = True) -> dict[str, RunLinks]:
    """The inputs (datasets and, if ``model_inputs``, logged models) and outputs (logged models) of
    each of ``run_ids`` that has any, in one statement: datasets by name and digest, model inputs by
    id, outputs by step and id."""
    ids = list(dict.fromkeys(run_ids))
    if not ids:
        return {}
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    parts = _LINK_PARTS if model_inputs else _LINK_PARTS[:2]
    # SQLite: CROSS JOIN keeps the ids as the outer loop (its planner's hint); PostgreSQL plans itself
    union = " UNION ALL ".join(parts).format(join="JOIN" if postgres else "CROSS JOIN")
    sql = _IDS["postgresql" if postgres else "sqlite"] + union
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, (ids if postgres else orjson.dumps(ids).decode(),))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    if not rows:
        return {}
    datasets: dict[str, list[tuple[str, str, DatasetInput]]] = {}
    used: dict[str, list[str]] = {}
    made: dict[str, list[tuple[str, int]]] = {}
    for run_id, kind, tags, name, digest, source_type, source, schema, profile, step in rows:
        if kind == 0:
            item = DatasetInput(
                Dataset(name, digest, source_type, source, schema, profile), orjson.loads(tags)
            )
            datasets.setdefault(run_id, []).append((name, digest, item))
        elif kind == 1:
            made.setdefault(run_id, []).append((name, int(step)))
        else:
            used.setdefault(run_id, []).append(name)
    return {
        run_id: RunLinks(
            tuple(item for _, _, item in sorted(datasets.get(run_id, ()), key=lambda t: (t[0], t[1]))),
            tuple(sorted(used.get(run_id, ()))),
            tuple(sorted(made.get(run_id, ()), key=lambda t: (t[1], t[0]))),
        )
        for run_id in ids
        if run_id in datasets or run_id in used or run_id in made
    }


def with_links(session: Session, runs: MutableSequence[Run], *, model_inputs: bool = True) -> None:
    """Give each of ``runs`` (in place) its inputs and outputs, read in ``session``."""
    links = load_links(session, [run.info.run_id for run in runs], model_inputs=model_inputs)
    if not links:
        return
    for position, run in enumerate(runs):
        found = links.get(run.info.run_id)
        if found is not None:
            runs[position] = dataclasses.replace(run, links=found)
