"""Experiments and runs: repository functions ``f(session, ...) -> entity``.

Each function runs inside the caller's transaction (``Database.write``/``read``); none commits.
Metric, param and tag writes live in :mod:`flowml.store.logging`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flowml.entities import (
    Experiment,
    LifecycleStage,
    PagedList,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    ViewType,
)
from flowml.exceptions import (
    InvalidParameterValue,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from flowml.store import filters, run_load
from flowml.store._names import random_run_name
from flowml.store.side_read import SideReader
from flowml.store.tables import (
    ExperimentRow,
    ExperimentTagRow,
    RunRow,
    RunTagRow,
    table_of,
)
from flowml.validation import (
    MAX_EXPERIMENT_TAG_VALUE_LENGTH,
    validate_experiment_id,
    validate_experiment_name,
    validate_key,
    validate_run_id,
    validate_tag_value,
)

__all__ = [
    "DEFAULT_EXPERIMENT_ID",
    "DEFAULT_EXPERIMENT_NAME",
    "RUN_NAME_TAG",
    "create_experiment",
    "create_run",
    "delete_experiment",
    "delete_experiment_tag",
    "delete_run",
    "get_experiment",
    "get_experiment_by_name",
    "get_run",
    "get_run_info",
    "get_run_row",
    "insert_default_experiment",
    "load_runs",
    "rename_experiment",
    "restore_experiment",
    "restore_run",
    "search_experiments",
    "search_runs",
    "set_experiment_tag",
    "update_run_info",
]

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"

_EXP = table_of(ExperimentRow)
_EXP_TAGS = table_of(ExperimentTagRow)
_RUNS = table_of(RunRow)
_RUN_TAGS = table_of(RunTagRow)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def join_uri(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


# -- experiments -------------------------------------------------------------------------------
def insert_default_experiment(conn: Connection, artifact_root: str) -> None:
    """Create experiment "0" named "Default" (idempotent)."""
    exists = conn.execute(select(_EXP.c.experiment_id).where(_EXP.c.experiment_id == 0)).first()
    if exists is None:
        ts = now_ms()
        conn.execute(
            insert(_EXP).values(
                experiment_id=0,
                name=DEFAULT_EXPERIMENT_NAME,
                artifact_location=join_uri(artifact_root, DEFAULT_EXPERIMENT_ID),
                lifecycle_stage=LifecycleStage.ACTIVE,
                creation_time=ts,
                last_update_time=ts,
            )
        )


def _experiment_row(session: Session, experiment_id: str | int) -> ExperimentRow:
    row = session.get(ExperimentRow, validate_experiment_id(experiment_id))
    if row is None:
        raise ResourceDoesNotExist(f"No Experiment with id={experiment_id} exists")
    return row


def _to_experiment(row: ExperimentRow, tags: Mapping[str, str]) -> Experiment:
    return Experiment(
        experiment_id=str(row.experiment_id),
        name=row.name,
        artifact_location=row.artifact_location,
        lifecycle_stage=row.lifecycle_stage,
        tags=dict(tags),
        creation_time=row.creation_time,
        last_update_time=row.last_update_time,
    )


def _experiment_tags(session: Session, ids: Sequence[int]) -> dict[int, dict[str, str]]:
    tags: dict[int, dict[str, str]] = {i: {} for i in ids}
    if ids:
        rows = session.execute(
            select(_EXP_TAGS.c.experiment_id, _EXP_TAGS.c.key, _EXP_TAGS.c.value).where(
                _EXP_TAGS.c.experiment_id.in_(ids)
            )
        )
        for exp_id, key, value in rows:
            tags[exp_id][key] = value
    return tags


def create_experiment(
    session: Session,
    name: str,
    artifact_root: str,
    artifact_location: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    validate_experiment_name(name)
    if artifact_location is not None:
        _validate_artifact_location(artifact_location)
    for key, value in (tags or {}).items():
        validate_key(key, "tag")
        validate_tag_value(key, value, MAX_EXPERIMENT_TAG_VALUE_LENGTH)
    existing = session.execute(select(_EXP.c.experiment_id).where(_EXP.c.name == name)).first()
    if existing is not None:
        raise ResourceAlreadyExists(f"Experiment(name={name}) already exists.")
    ts = now_ms()
    row = ExperimentRow(
        name=name,
        artifact_location=artifact_location or "",
        lifecycle_stage=LifecycleStage.ACTIVE,
        creation_time=ts,
        last_update_time=ts,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create won the race
        raise ResourceAlreadyExists(f"Experiment(name={name}) already exists.") from exc
    assert row.experiment_id is not None
    if not artifact_location:
        row.artifact_location = join_uri(artifact_root, str(row.experiment_id))
    if tags:
        session.execute(
            insert(_EXP_TAGS),
            [{"experiment_id": row.experiment_id, "key": k, "value": str(v)} for k, v in tags.items()],
        )
    return str(row.experiment_id)


def _validate_artifact_location(location: str) -> None:
    if len(location) > 2048:
        raise InvalidParameterValue("artifact_location exceeds the maximum length of 2048 characters")
    if location.startswith("runs:"):
        raise InvalidParameterValue("artifact_location cannot be a runs:/ URI")
    if any(ch in location for ch in "?#;\x00") or ".." in location.replace("\\", "/").split("/"):
        raise InvalidParameterValue(
            f"Invalid artifact_location {location!r}: it may not contain '?', '#', ';', NUL or '..'"
        )


def get_experiment(session: Session, experiment_id: str | int) -> Experiment:
    row = _experiment_row(session, experiment_id)
    assert row.experiment_id is not None
    return _to_experiment(row, _experiment_tags(session, [row.experiment_id])[row.experiment_id])


def get_experiment_by_name(session: Session, name: str) -> Experiment | None:
    """The experiment called ``name``; names are unique, deleted experiments included."""
    row = session.execute(select(ExperimentRow).where(ExperimentRow.name == name)).scalar_one_or_none()  # type: ignore[arg-type]
    if row is None:
        return None
    assert row.experiment_id is not None
    return _to_experiment(row, _experiment_tags(session, [row.experiment_id])[row.experiment_id])


def search_experiments(
    session: Session,
    view_type: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
    page_token: str | None = None,
) -> PagedList[Experiment]:
    ids, token = filters.search_experiment_ids(
        session, view_type, max_results, filter_string, order_by, page_token
    )
    rows = {
        row.experiment_id: row
        for row in session.execute(
            select(ExperimentRow).where(ExperimentRow.experiment_id.in_(ids))  # type: ignore[union-attr]
        ).scalars()
    }
    tags = _experiment_tags(session, ids)
    return PagedList([_to_experiment(rows[i], tags[i]) for i in ids], token)


def rename_experiment(session: Session, experiment_id: str, new_name: str) -> None:
    validate_experiment_name(new_name)
    row = _experiment_row(session, experiment_id)
    if row.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameterValue("Cannot rename a non-active experiment.")
    if row.name == new_name:
        return
    if get_experiment_by_name(session, new_name) is not None:
        raise ResourceAlreadyExists(f"Experiment(name={new_name}) already exists.")
    row.name = new_name
    row.last_update_time = now_ms()


def _set_experiment_stage(session: Session, experiment_id: str, stage: str) -> None:
    """Move an experiment and all its runs to ``stage`` (MLflow's delete/restore semantics)."""
    row = _experiment_row(session, experiment_id)
    if str(row.experiment_id) == DEFAULT_EXPERIMENT_ID and stage == LifecycleStage.DELETED:
        raise InvalidParameterValue("Cannot delete the default experiment '0'.")
    ts = now_ms()
    row.lifecycle_stage = stage
    row.last_update_time = ts
    deleted_time = ts if stage == LifecycleStage.DELETED else None
    session.execute(
        update(_RUNS)
        .where(_RUNS.c.experiment_id == row.experiment_id)
        .values(lifecycle_stage=stage, deleted_time=deleted_time)
    )


def delete_experiment(session: Session, experiment_id: str) -> None:
    _set_experiment_stage(session, experiment_id, LifecycleStage.DELETED)


def restore_experiment(session: Session, experiment_id: str) -> None:
    row = _experiment_row(session, experiment_id)
    if row.lifecycle_stage != LifecycleStage.DELETED:
        raise InvalidParameterValue(f"Cannot restore experiment {experiment_id}: it is not deleted.")
    _set_experiment_stage(session, experiment_id, LifecycleStage.ACTIVE)


def set_experiment_tag(session: Session, experiment_id: str, key: str, value: str) -> None:
    validate_key(key, "tag")
    value = validate_tag_value(key, value, MAX_EXPERIMENT_TAG_VALUE_LENGTH)
    row = _experiment_row(session, experiment_id)
    if row.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameterValue(f"The experiment {experiment_id} must be in the 'active' state.")
    assert row.experiment_id is not None
    session.merge(ExperimentTagRow(experiment_id=row.experiment_id, key=key, value=value))


def delete_experiment_tag(session: Session, experiment_id: str, key: str) -> None:
    row = _experiment_row(session, experiment_id)
    result = session.execute(
        delete(_EXP_TAGS).where(_EXP_TAGS.c.experiment_id == row.experiment_id, _EXP_TAGS.c.key == key)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise ResourceDoesNotExist(f"No tag with name: {key} in experiment {experiment_id}")


# -- runs --------------------------------------------------------------------------------------
def get_run_row(session: Session, run_id: str, *, for_write: bool = False) -> RunRow:
    validate_run_id(run_id)
    row = session.get(RunRow, run_id)
    if row is None:
        raise ResourceDoesNotExist(f"Run with id={run_id} not found")
    if for_write and row.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameterValue(
            f"The run {run_id} must be in the 'active' state. Current state is {row.lifecycle_stage}."
        )
    return row


def _to_run_info(row: RunRow) -> RunInfo:
    return RunInfo(
        run_id=row.run_id,
        experiment_id=str(row.experiment_id),
        run_name=row.run_name,
        user_id=row.user_id,
        status=row.status,
        start_time=row.start_time,
        end_time=row.end_time,
        artifact_uri=row.artifact_uri,
        lifecycle_stage=row.lifecycle_stage,
    )


def create_run(
    session: Session,
    experiment_id: str,
    user_id: str = "",
    start_time: int | None = None,
    tags: Mapping[str, str] | None = None,
    run_name: str | None = None,
) -> Run:
    experiment = _experiment_row(session, experiment_id)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameterValue(
            f"The experiment {experiment_id} must be in the 'active' state. "
            f"Current state is {experiment.lifecycle_stage}."
        )
    tags = {k: str(v) for k, v in (tags or {}).items()}
    for key, value in tags.items():
        validate_key(key, "tag")
        validate_tag_value(key, value)
    tag_name = tags.get(RUN_NAME_TAG)
    if run_name and tag_name and run_name != tag_name:
        raise InvalidParameterValue(
            f"Both 'run_name' argument and '{RUN_NAME_TAG}' tag are specified, but with different "
            f"values (run_name='{run_name}', {RUN_NAME_TAG}='{tag_name}')."
        )
    run_name = run_name or tag_name or random_run_name()
    tags[RUN_NAME_TAG] = run_name
    if user_id and USER_TAG not in tags:
        tags[USER_TAG] = user_id
    run_id = uuid.uuid4().hex
    row = RunRow(
        run_id=run_id,
        experiment_id=experiment.experiment_id,  # type: ignore[arg-type]
        run_name=run_name,
        user_id=user_id,
        status=RunStatus.RUNNING,
        start_time=start_time if start_time is not None else now_ms(),
        end_time=None,
        artifact_uri=join_uri(experiment.artifact_location, run_id, "artifacts"),
        lifecycle_stage=LifecycleStage.ACTIVE,
    )
    session.add(row)
    session.flush()
    session.execute(insert(_RUN_TAGS), [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()])
    return Run(_to_run_info(row), RunData(tags=tags))


def load_runs(session: Session, run_ids: Sequence[str]) -> list[Run]:
    """Runs with their latest metrics, params and tags: two queries for any number of runs
    (:mod:`flowml.store.run_load`; this is the second half of every search page)."""
    return run_load.load_runs(session, run_ids)


def get_run_info(session: Session, run_id: str) -> RunInfo:
    """The run's info alone (no params, tags, metrics or inputs): for checks that need its experiment
    or artifact location."""
    return _to_run_info(get_run_row(session, run_id))


def get_run(session: Session, run_id: str) -> Run:
    get_run_row(session, run_id)
    return load_runs(session, [run_id])[0]


def update_run_info(
    session: Session,
    run_id: str,
    status: str | None = None,
    end_time: int | None = None,
    run_name: str | None = None,
) -> RunInfo:
    row = get_run_row(session, run_id, for_write=True)
    if status is not None:
        try:
            row.status = RunStatus.from_string(status)
        except ValueError as exc:
            raise InvalidParameterValue(str(exc)) from exc
    if end_time is not None:
        row.end_time = end_time
    if run_name:
        row.run_name = run_name
        session.merge(RunTagRow(run_id=run_id, key=RUN_NAME_TAG, value=run_name))
    return _to_run_info(row)


def delete_run(session: Session, run_id: str) -> None:
    row = get_run_row(session, run_id)
    row.lifecycle_stage = LifecycleStage.DELETED
    row.deleted_time = now_ms()


def restore_run(session: Session, run_id: str) -> None:
    row = get_run_row(session, run_id)
    row.lifecycle_stage = LifecycleStage.ACTIVE
    row.deleted_time = None


def search_runs(
    session: Session,
    experiment_ids: Sequence[str],
    filter_string: str | None = None,
    run_view_type: ViewType = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    order_by: Sequence[str] | None = None,
    page_token: str | None = None,
    side: SideReader | None = None,
) -> PagedList[Run]:
    """A page of runs with their data; ``side`` lets a large SQLite page read its params and tags
    in parallel (:func:`flowml.store.run_load.load_page`)."""
    exp_ids = [validate_experiment_id(e) for e in experiment_ids]
    rows, token = filters.search_run_page(
        session, exp_ids, filter_string, ViewType(run_view_type), max_results, order_by, page_token
    )
    return PagedList(run_load.load_page(session, rows, side), token)
