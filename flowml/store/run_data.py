"""Writing and reading a run's metrics, params, tags and artifact records.

``log_batch`` is the one write path for metrics/params/tags (single calls are batches of one): it
validates everything first, then writes each table with one executemany inside the caller's
transaction, upserting ``latest_metrics`` in key order (a stable lock order on PostgreSQL).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flowml.entities import LifecycleStage, Metric, PagedList, Param, RunTag
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.store.tables import (
    ArtifactFileRow,
    LatestMetricRow,
    MetricRow,
    ParamRow,
    RunRow,
    RunTagRow,
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
    "delete_tag",
    "get_metric_history",
    "list_artifact_files",
    "log_batch",
    "record_artifact_files",
]

_METRICS = table_of(MetricRow)
_LATEST = table_of(LatestMetricRow)
_PARAMS = table_of(ParamRow)
_TAGS = table_of(RunTagRow)
_RUNS = table_of(RunRow)
_ARTIFACTS = table_of(ArtifactFileRow)

# (step, timestamp, stored value, is_nan) of one metric point, in "latest" comparison order.
_Point = tuple[int, int, float, bool]
# (run_id, key, step, timestamp, stored value, is_nan): one row of the metrics table.
_Row = tuple[str, str, int, int, float, bool]


def _upsert(session: Session, table: Table) -> Any:
    """The dialect's INSERT that supports ``on_conflict_do_*`` (SQLite and PostgreSQL)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"Unsupported database dialect {name!r}")


def _driver_sql(session: Session, sql: str, params: Any) -> Any:
    """Run plain SQL written with ``?`` placeholders on the session's connection (hot paths only:
    no statement construction or compilation). A list of tuples runs as one executemany."""
    conn = session.connection()
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    return conn.exec_driver_sql(sql, params)


def _check_params(session: Session, run_id: str, params: Sequence[Param]) -> list[dict[str, str]]:
    """Validated new param rows; a changed value (in the batch or vs. the store) is an error."""
    wanted: dict[str, str] = {}
    for param in params:
        validate_key(param.key, "param")
        value = validate_param_value(param.key, param.value)
        if wanted.setdefault(param.key, value) != value:
            raise InvalidParameterValue(
                f"Duplicate parameter keys have been submitted: '{param.key}' with different values"
            )
    if not wanted:
        return []
    stored: dict[str, str] = dict(
        session.execute(  # type: ignore[arg-type]
            select(_PARAMS.c.key, _PARAMS.c.value).where(
                _PARAMS.c.run_id == run_id, _PARAMS.c.key.in_(list(wanted))
            )
        ).all()
    )
    changed = [
        {"key": k, "old_value": stored[k], "new_value": v}
        for k, v in wanted.items()
        if k in stored and stored[k] != v
    ]
    if changed:
        raise InvalidParameterValue(
            "Changing param values is not allowed. Params were already logged="
            f"'{changed}' for run ID='{run_id}'."
        )
    return [{"run_id": run_id, "key": k, "value": v} for k, v in wanted.items() if k not in stored]


def _metric_rows(run_id: str, metrics: Sequence[Metric]) -> tuple[list[_Row], dict[str, _Point]]:
    """Validated, de-duplicated metric rows and the newest point per key in this batch."""
    rows: dict[_Row, None] = {}
    latest: dict[str, _Point] = {}
    for key in {m.key for m in metrics}:
        validate_key(key, "metric")
    for metric in metrics:
        value, timestamp, step = validate_metric_point(
            metric.key, metric.value, metric.timestamp, metric.step
        )
        is_nan = value != value
        stored = 0.0 if is_nan else value
        rows[(run_id, metric.key, step, timestamp, stored, is_nan)] = None
        best = latest.get(metric.key)
        if best is None or (step, timestamp, stored) > best[:3]:
            latest[metric.key] = (step, timestamp, stored, is_nan)
    return list(rows), latest


def _check_run_active(session: Session, run_id: str) -> None:
    """``get_run_row(for_write=True)`` as one driver-level query (log_batch is the hot path)."""
    validate_run_id(run_id)
    stage = _driver_sql(session, "SELECT lifecycle_stage FROM runs WHERE run_id = ?", (run_id,)).scalar()
    if stage is None:
        raise ResourceDoesNotExist(f"Run with id={run_id} not found")
    if stage != LifecycleStage.ACTIVE:
        raise InvalidParameterValue(
            f"The run {run_id} must be in the 'active' state. Current state is {stage}."
        )


def log_batch(
    session: Session,
    run_id: str,
    metrics: Sequence[Metric] = (),
    params: Sequence[Param] = (),
    tags: Sequence[RunTag] = (),
) -> None:
    validate_batch_limits(len(metrics), len(params), len(tags))
    _check_run_active(session, run_id)
    tag_rows: dict[str, str] = {}
    for tag in tags:
        validate_key(tag.key, "tag")
        tag_rows[tag.key] = validate_tag_value(tag.key, tag.value)
    metric_rows, latest = _metric_rows(run_id, metrics)
    param_rows = _check_params(session, run_id, params)

    if param_rows:
        session.execute(insert(_PARAMS), param_rows)
    if tag_rows:
        stmt = _upsert(session, _TAGS)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[_TAGS.c.run_id, _TAGS.c.key], set_={"value": stmt.excluded.value}
            ),
            [{"run_id": run_id, "key": k, "value": v} for k, v in sorted(tag_rows.items())],
        )
        if RUN_NAME_TAG in tag_rows:
            session.execute(
                update(_RUNS).where(_RUNS.c.run_id == run_id).values(run_name=tag_rows[RUN_NAME_TAG])
            )
    if metric_rows:
        _insert_metric_rows(session, metric_rows)
        _upsert_latest(session, run_id, latest)


def _insert_metric_rows(session: Session, rows: list[_Row]) -> None:
    """One DBAPI executemany of plain tuples: the hot path of log_batch (no per-row compiling)."""
    _driver_sql(
        session,
        'INSERT INTO metrics (run_id, "key", step, "timestamp", "value", is_nan) '
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        rows,
    )


def _upsert_latest(session: Session, run_id: str, latest: dict[str, _Point]) -> None:
    """Keep the newest point per key: MLflow's (step, timestamp, value) rule, decided in SQL.

    Written as driver SQL (same text on SQLite and PostgreSQL) because it runs on every batch and
    SQLAlchemy cannot cache the compiled ON CONFLICT ... WHERE form.
    """
    _driver_sql(
        session,
        'INSERT INTO latest_metrics (run_id, "key", step, "timestamp", "value", is_nan) '
        "VALUES (?, ?, ?, ?, ?, ?) "
        'ON CONFLICT (run_id, "key") DO UPDATE SET step = excluded.step, '
        '"timestamp" = excluded."timestamp", "value" = excluded."value", is_nan = excluded.is_nan '
        'WHERE (excluded.step, excluded."timestamp", excluded."value") > '
        '(latest_metrics.step, latest_metrics."timestamp", latest_metrics."value")',
        [(run_id, key, *point) for key, point in sorted(latest.items())],
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
    stmt = _upsert(session, _ARTIFACTS)
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
