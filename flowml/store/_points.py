"""Metric points into ``metrics`` and ``latest_metrics``, on either database, inside the caller's
transaction: the general write path of a log-batch group (``run_data.write_batches``; a PostgreSQL
group of metric points only takes ``_pg_batch.write_points`` instead)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from flowml.store import _pg_arrays, _pg_batch, _sqlite_batch
from flowml.store.tables import LATEST_UPSERT, POINT_COLUMNS, PointRow

__all__ = ["NewestPoint", "insert_metric_rows", "latest_rows", "merge_latest", "upsert_latest"]

#: (step, timestamp, stored value, is_nan) of one metric point, in "latest" comparison order.
NewestPoint = tuple[int, int, float, bool]

_METRIC_COLUMNS = f"metrics {POINT_COLUMNS}"  # in the order of ``PointRow``
_LATEST_COLUMNS = f"latest_metrics {POINT_COLUMNS}"


def merge_latest(
    latest: dict[str, dict[str, NewestPoint]], run_id: str, newest: dict[str, NewestPoint]
) -> None:
    """Fold one batch's newest point per key into a group's (MLflow's (step, timestamp, value) order)."""
    if not newest:
        return
    merged = latest.setdefault(run_id, {})
    for key, point in newest.items():
        best = merged.get(key)
        if best is None or point[:3] > best[:3]:
            merged[key] = point


def latest_rows(latest: dict[str, dict[str, NewestPoint]]) -> list[PointRow]:
    """One row per (run, key), in that order: a stable lock order between concurrent writers."""
    return [
        (run_id, key, *point) for run_id in sorted(latest) for key, point in sorted(latest[run_id].items())
    ]


def insert_metric_rows(session: Session, rows: list[PointRow]) -> None:
    """The hot path of log_batch, without per-row statement building or compiling.

    SQLite: multi-row ``VALUES`` statements of plain tuples (``_sqlite_batch.insert_rows``).
    PostgreSQL: a binary ``COPY`` (``_pg_batch.copy_metric_rows``).
    """
    if session.get_bind().dialect.name == "postgresql":
        _pg_batch.copy_metric_rows(session, rows)
        return
    _sqlite_batch.insert_rows(
        session.connection(), f"INSERT INTO {_METRIC_COLUMNS}", rows, "ON CONFLICT DO NOTHING"
    )


def upsert_latest(session: Session, latest: dict[str, dict[str, NewestPoint]]) -> None:
    """Keep the newest point per (run, key): MLflow's (step, timestamp, value) rule, decided in SQL.

    Rows go in (run_id, key) order: a stable lock order between concurrent writers on PostgreSQL,
    where they travel as one statement reading six array parameters (``_pg_arrays``); on
    SQLite as multi-row ``VALUES`` statements (``_sqlite_batch``). Driver SQL either way:
    SQLAlchemy cannot cache the compiled ``ON CONFLICT ... WHERE`` form.
    """
    rows = latest_rows(latest)
    if not rows:
        return
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"INSERT INTO {_LATEST_COLUMNS} SELECT u.* FROM {_pg_batch.UNNEST_POINTS} {LATEST_UPSERT}",
            _pg_arrays.point_arrays(rows),
        )
        return
    _sqlite_batch.insert_rows(conn, f"INSERT INTO {_LATEST_COLUMNS}", rows, LATEST_UPSERT)
