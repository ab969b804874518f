"""Writing and reading a run's metrics, params, tags and artifact records.

``log_batch`` is the one write path for metrics/params/tags (single calls are batches of one):
:func:`prepare_batch` validates a request without the database; :func:`write_batches` writes a
group of prepared batches (the server's concurrent requests, see ``group_commit``) with a few
statements per table inside the caller's transaction, upserting ``latest_metrics`` in key order
(a stable lock order on PostgreSQL).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from flowml.entities import LifecycleStage, Metric, ModelMetric, PagedList, Param, RunTag
from flowml.exceptions import FlowmlError, InvalidParameterValue, ResourceDoesNotExist
from flowml.store import _model_points, _pg_batch, _points
from flowml.store._pg_loop import LoopPointWriter
from flowml.store.tables import (
    ArtifactFileRow,
    LatestMetricRow,
    MetricRow,
    ParamRow,
    PointRow,
    RunRow,
    RunTagRow,
    insert_on_conflict,
    table_of,
)
from flowml.store.tracking import RUN_NAME_TAG, get_run_row, now_ms
from flowml.validation import (
    validate_batch_limits,
    validate_key,
    validate_metric_point,
    validate_param_value,
    validate_run_id,
    validate_tag_value,
)

__all__ = [
    "Point",
    "PreparedBatch",
    "delete_tag",
    "get_metric_history",
    "list_artifact_files",
    "log_batch",
    "points_only",
    "prepare_batch",
    "prepare_points",
    "record_artifact_files",
    "write_batches",
    "write_points_on_loop",
]

_METRICS = table_of(MetricRow)
_LATEST = table_of(LatestMetricRow)
_PARAMS = table_of(ParamRow)
_TAGS = table_of(RunTagRow)
_RUNS = table_of(RunRow)
_ARTIFACTS = table_of(ArtifactFileRow)

#: (key, value, timestamp, step) of one logged point, typed as ``validate_metric_point`` returns it.
Point = tuple[str, float, int, int]
_Point = _points.NewestPoint


def _driver_sql(session: Session, sql: str, params: Any) -> Any:
    """Run plain SQL written with ``?`` placeholders on the session's connection (hot paths only:
    no statement construction or compilation). A list of tuples runs as one executemany."""
    conn = session.connection()
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    return conn.exec_driver_sql(sql, params)


def _metric_rows(run_id: str, points: Sequence[Point]) -> tuple[list[PointRow], dict[str, _Point]]:
    """Metric rows (keys validated) and the newest point per key in this batch.

    A point logged twice becomes two identical rows: the insert's ``ON CONFLICT DO NOTHING`` keeps one
    (it must anyway: concurrent batches sharing a group commit may carry the same point).
    """
    rows: list[PointRow] = []
    append = rows.append
    latest: dict[str, _Point] = {}
    for key, value, timestamp, step in points:
        is_nan = value != value
        stored = 0.0 if is_nan else value
        append((run_id, key, step, timestamp, stored, is_nan))
        best = latest.get(key)
        if best is None:
            validate_key(key, "metric")
            latest[key] = (step, timestamp, stored, is_nan)
        elif (step, timestamp, stored) > best[:3]:
            latest[key] = (step, timestamp, stored, is_nan)
    return rows, latest


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A validated ``log_batch`` request, built before any transaction (see :func:`prepare_batch`)."""

    run_id: str
    metric_rows: list[PointRow]
    latest: dict[str, _Point]
    params: dict[str, str]
    tags: dict[str, str]
    #: The points that are also metrics of logged models (MLflow 3: sent with a ``model_id``).
    model_points: tuple[ModelMetric, ...] = ()


def batch_weight(batch: PreparedBatch) -> int:
    """Rows ``batch`` writes, roughly: what a group commit weighs before writing on an event loop."""
    return (
        len(batch.metric_rows)
        + len(batch.latest)
        + len(batch.params)
        + len(batch.tags)
        + len(batch.model_points)
    )


def prepare_batch(
    run_id: str,
    metrics: Sequence[Metric] = (),
    params: Sequence[Param] = (),
    tags: Sequence[RunTag] = (),
    model_points: Sequence[ModelMetric] = (),
) -> PreparedBatch:
    """Check everything that does not need the database (MLflow's order: data first, then the run).
    ``model_points`` repeat some of ``metrics`` as metrics of logged models."""
    validate_batch_limits(len(metrics), len(params), len(tags))
    points = [(m.key, *validate_metric_point(m.key, m.value, m.timestamp, m.step)) for m in metrics]
    return prepare_points(run_id, points, params, tags, model_points)


def prepare_points(
    run_id: str,
    points: Sequence[Point],
    params: Sequence[Param],
    tags: Sequence[RunTag],
    model_points: Sequence[ModelMetric] = (),
) -> PreparedBatch:
    """:func:`prepare_batch` of metric points already typed by :func:`validate_metric_point` (or by
    an equivalent parser: the server reads them straight from the request JSON)."""
    validate_batch_limits(len(points), len(params), len(tags))
    validate_run_id(run_id)
    tag_values: dict[str, str] = {}
    for tag in tags:
        validate_key(tag.key, "tag")
        tag_values[tag.key] = validate_tag_value(tag.key, tag.value)
    metric_rows, latest = _metric_rows(run_id, points)
    wanted: dict[str, str] = {}
    for param in params:
        validate_key(param.key, "param")
        value = validate_param_value(param.key, param.value)
        if wanted.setdefault(param.key, value) != value:
            raise InvalidParameterValue(
                f"Duplicate parameter keys have been submitted: '{param.key}' with different values"
            )
    checked = _model_points.check_points(model_points) if model_points else ()
    return PreparedBatch(run_id, metric_rows, latest, wanted, tag_values, checked)


def _run_stages(session: Session, run_ids: set[str], *, savepoint: bool) -> dict[str, str]:
    """Each run's lifecycle stage; on PostgreSQL locked until the group commits (see
    ``_pg_batch.lock_runs``, which also opens the metrics' savepoint). SQLite has a single writer."""
    if session.get_bind().dialect.name == "postgresql":
        return _pg_batch.lock_runs(session, list(run_ids), savepoint=savepoint)
    marks = ", ".join("?" * len(run_ids))
    sql = f"SELECT run_id, lifecycle_stage FROM runs WHERE run_id IN ({marks})"
    return {run_id: stage for run_id, stage in _driver_sql(session, sql, tuple(run_ids))}


def _stage_error(run_id: str, stage: str | None) -> FlowmlError | None:
    if stage is None:
        return ResourceDoesNotExist(f"Run with id={run_id} not found")
    if stage != LifecycleStage.ACTIVE:
        return InvalidParameterValue(
            f"The run {run_id} must be in the 'active' state. Current state is {stage}."
        )
    return None


def _new_params(session: Session, batch: PreparedBatch, earlier: dict[tuple[str, str], str]) -> list[str]:
    """Keys of ``batch.params`` to insert; a value differing from the store (or from an earlier batch
    of the same group) is an error."""
    stored = {k: v for (r, k), v in earlier.items() if r == batch.run_id and k in batch.params}
    missing = [k for k in batch.params if k not in stored]
    if missing:
        stored.update(
            session.execute(  # type: ignore[arg-type]
                select(_PARAMS.c.key, _PARAMS.c.value).where(
                    _PARAMS.c.run_id == batch.run_id, _PARAMS.c.key.in_(missing)
                )
            ).all()
        )
    changed = [
        {"key": k, "old_value": stored[k], "new_value": v}
        for k, v in batch.params.items()
        if k in stored and stored[k] != v
    ]
    if changed:
        raise InvalidParameterValue(
            "Changing param values is not allowed. Params were already logged="
            f"'{changed}' for run ID='{batch.run_id}'."
        )
    return [k for k in batch.params if k not in stored]


def write_batches(session: Session, batches: Sequence[PreparedBatch]) -> list[FlowmlError | None]:
    """Write a group of batches in the caller's transaction; returns each batch's error (or None).

    Every refusal (unknown or deleted run, unknown logged model, changed param) is decided before
    anything is written, so a refused batch writes nothing and the others are unaffected; the accepted
    ones are then merged into one statement per table (group commit: the per-statement cost is paid
    once per group).

    On PostgreSQL a group of metric points only, in a session that has sent nothing yet, is written
    AND committed here in one exchange (``_pg_batch.write_points``): the caller must write nothing
    after it in the same transaction (``Database.write``'s callers never do).
    """
    if all(points_only(b) for b in batches) and _pg_batch.can_write_points(session):
        written = _write_points_pg(session, batches)
        if written is not None:
            return written
    errors: list[FlowmlError | None] = [None] * len(batches)
    savepoint = any(b.metric_rows for b in batches)
    stages = _run_stages(session, {b.run_id for b in batches}, savepoint=savepoint)
    with_models = [b for b in batches if b.model_points]
    models = _model_points.existing_models(session, (p.model_id for b in with_models for p in b.model_points))
    params: dict[tuple[str, str], str] = {}
    new_params: list[dict[str, str]] = []
    tags: dict[tuple[str, str], str] = {}
    metric_rows: list[PointRow] = []
    latest: dict[str, dict[str, _Point]] = {}
    for i, batch in enumerate(batches):
        try:
            refused = _stage_error(batch.run_id, stages.get(batch.run_id))
            if refused is not None:
                raise refused
            unknown = _model_points.missing_model((p.model_id for p in batch.model_points), models)
            if unknown is not None:
                raise unknown
            keys = _new_params(session, batch, params) if batch.params else []
        except FlowmlError as exc:
            errors[i] = exc
            continue
        for key in keys:
            params[batch.run_id, key] = batch.params[key]
            new_params.append({"run_id": batch.run_id, "key": key, "value": batch.params[key]})
        for key, value in batch.tags.items():
            tags[batch.run_id, key] = value
        metric_rows.extend(batch.metric_rows)
        _points.merge_latest(latest, batch.run_id, batch.latest)
    # Metrics before params and tags: on PostgreSQL a point stored already rolls the COPY back to the
    # savepoint taken with the run locks (``_pg_batch``), which would undo anything written after it.
    if metric_rows:
        _points.insert_metric_rows(session, metric_rows)
    if new_params:
        _insert_params(session, new_params)
    if tags:
        stmt = insert_on_conflict(session, _TAGS)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[_TAGS.c.run_id, _TAGS.c.key], set_={"value": stmt.excluded.value}
            ),
            [{"run_id": r, "key": k, "value": v} for (r, k), v in sorted(tags.items())],
        )
        for (run_id, key), value in sorted(tags.items()):
            if key == RUN_NAME_TAG:
                session.execute(update(_RUNS).where(_RUNS.c.run_id == run_id).values(run_name=value))
    if latest:
        _points.upsert_latest(session, latest)
    for i, batch in enumerate(batches):
        if batch.model_points and errors[i] is None:
            _model_points.insert_points(session, batch.run_id, batch.model_points)
    return errors


def points_only(batch: PreparedBatch) -> bool:
    """Whether ``batch`` carries metric points only (what a training loop sends): such groups can
    be written on PostgreSQL in one exchange (``_pg_batch.write_points``)."""
    return not (batch.params or batch.tags or batch.model_points)


def _group_points(batches: Sequence[PreparedBatch]) -> tuple[set[str], list[PointRow], list[PointRow]]:
    """A group's runs, points and newest point per (run, key). Batches of the same run share its
    stage, so merging every batch's newest points before the stages are known changes nothing: a
    refused run's rows are left out by the one-exchange write itself."""
    latest: dict[str, dict[str, _Point]] = {}
    for batch in batches:
        _points.merge_latest(latest, batch.run_id, batch.latest)
    rows = [row for batch in batches for row in batch.metric_rows]
    return {b.run_id for b in batches}, rows, _points.latest_rows(latest)


def _stage_errors(batches: Sequence[PreparedBatch], stages: dict[str, str]) -> list[FlowmlError | None]:
    return [_stage_error(batch.run_id, stages.get(batch.run_id)) for batch in batches]


def _write_points_pg(session: Session, batches: Sequence[PreparedBatch]) -> list[FlowmlError | None] | None:
    """A PostgreSQL group of metric-only batches: one exchange, which also commits
    (``_pg_batch.write_points``; ``None`` when it wrote nothing because a point was stored already)."""
    stages = _pg_batch.write_points(session, *_group_points(batches), active=LifecycleStage.ACTIVE)
    return None if stages is None else _stage_errors(batches, stages)


async def write_points_on_loop(
    writer: LoopPointWriter, batches: Sequence[PreparedBatch]
) -> list[FlowmlError | None] | None:
    """:func:`_write_points_pg` from the server's event loop (``_pg_loop``): same statements, same
    outcome, no thread. ``None`` when nothing was written (the caller's thread path takes over)."""
    stages = await writer.write(*_group_points(batches), active=LifecycleStage.ACTIVE)
    return None if stages is None else _stage_errors(batches, stages)


def log_batch(
    session: Session,
    run_id: str,
    metrics: Sequence[Metric] = (),
    params: Sequence[Param] = (),
    tags: Sequence[RunTag] = (),
    model_points: Sequence[ModelMetric] = (),
) -> None:
    error = write_batches(session, [prepare_batch(run_id, metrics, params, tags, model_points)])[0]
    if error is not None:
        raise error


def _insert_params(session: Session, rows: list[dict[str, str]]) -> None:
    """Insert params with their run's ``experiment_id`` and ``start_time`` (search indexes them):
    one lookup per run, then one executemany (cheaper than an ``INSERT ... SELECT`` per row)."""
    run_ids = tuple(sorted({row["run_id"] for row in rows}))
    marks = ", ".join("?" * len(run_ids))
    fields = {
        run_id: (experiment_id, start_time)
        for run_id, experiment_id, start_time in _driver_sql(
            session, f"SELECT run_id, experiment_id, start_time FROM runs WHERE run_id IN ({marks})", run_ids
        )
    }
    _driver_sql(
        session,
        'INSERT INTO params (run_id, "key", "value", experiment_id, start_time) VALUES (?, ?, ?, ?, ?)',
        [(row["run_id"], row["key"], row["value"], *fields[row["run_id"]]) for row in rows],
    )


def delete_tag(session: Session, run_id: str, key: str) -> None:
    run = get_run_row(session, run_id, for_write=True)
    result = session.execute(delete(_TAGS).where(_TAGS.c.run_id == run_id, _TAGS.c.key == key))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise ResourceDoesNotExist(f"No tag with name: {key} in run with id {run_id}")
    if key == RUN_NAME_TAG:
        run.run_name = ""


def _decode_offset(page_token: str | None) -> int:
    if not page_token:
        return 0
    try:
        offset = json.loads(base64.b64decode(page_token, validate=True))["offset"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidParameterValue(f"Invalid page token {page_token!r}") from exc
    if not isinstance(offset, int) or offset < 0:
        raise InvalidParameterValue(f"Invalid page token {page_token!r}")
    return offset


def _encode_offset(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def get_metric_history(
    session: Session,
    run_id: str,
    key: str,
    max_results: int | None = None,
    page_token: str | None = None,
) -> PagedList[Metric]:
    """Every logged point of ``key``, ordered by timestamp, step, value (MLflow's order)."""
    get_run_row(session, run_id)
    if max_results is not None and max_results < 1:
        raise InvalidParameterValue(f"max_results must be positive, got {max_results}")
    offset = _decode_offset(page_token)
    query = (
        select(_METRICS.c.value, _METRICS.c.timestamp, _METRICS.c.step, _METRICS.c.is_nan)
        .where(_METRICS.c.run_id == run_id, _METRICS.c.key == key)
        .order_by(_METRICS.c.timestamp, _METRICS.c.step, _METRICS.c.value)
        .offset(offset)
    )
    if max_results is not None:
        query = query.limit(max_results + 1)
    points = [
        Metric(key, float("nan") if is_nan else value, timestamp, step)
        for value, timestamp, step, is_nan in session.execute(query)
    ]
    token = None
    if max_results is not None and len(points) > max_results:
        points = points[:max_results]
        token = _encode_offset(offset + max_results)
    return PagedList(points, token)


def record_artifact_files(session: Session, run_id: str, records: Iterable[tuple[str, int, str]]) -> None:
    """Remember ``(path, size, sha256)`` of files logged to a run (re-logging a path replaces it)."""
    rows = [
        {"run_id": run_id, "path": path, "file_size": size, "sha256": digest, "logged_time": now_ms()}
        for path, size, digest in records
    ]
    if not rows:
        return
    get_run_row(session, run_id)
    stmt = insert_on_conflict(session, _ARTIFACTS)
    ex = stmt.excluded
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[_ARTIFACTS.c.run_id, _ARTIFACTS.c.path],
            set_={"file_size": ex.file_size, "sha256": ex.sha256, "logged_time": ex.logged_time},
        ),
        rows,
    )


def list_artifact_files(session: Session, run_id: str) -> dict[str, tuple[int, str]]:
    """``{path: (size, sha256)}`` of every file recorded for the run."""
    get_run_row(session, run_id)
    return {
        path: (size, digest)
        for path, size, digest in session.execute(
            select(_ARTIFACTS.c.path, _ARTIFACTS.c.file_size, _ARTIFACTS.c.sha256).where(
                _ARTIFACTS.c.run_id == run_id
            )
        )
    }
