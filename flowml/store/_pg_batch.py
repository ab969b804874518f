"""PostgreSQL's side of a log-batch group write, in as few round trips as the driver allows.

Under load every round trip to the database costs the group leader a wake-up (the backend's, then
its own, behind the event loop's share of the GIL): 1-3 ms each on the 2-core benchmark machine,
where a group of 400 points needs ~4 ms of the backend's time.

A group whose batches carry metric points only (what training loops send) is written by
:func:`write_points` in ONE exchange that also commits. Any other group pays for:

1. one pipelined exchange: the transaction's ``BEGIN``, the run rows' lock and lifecycle stages
   (``SELECT ... FOR KEY SHARE``, see :func:`lock_runs`) and the savepoint ``COPY`` falls back to;
2. the binary ``COPY`` of the points (two exchanges: ``COPY`` cannot be pipelined);
3. the ``latest_metrics`` upsert (``run_data``), 4. ``COMMIT``.

The pool does not ping a connection that was in use a moment ago (``Database``); a connection
found dead here is invalidated and the error surfaces as SQLAlchemy's, flagged as a disconnect, so
``Database.write`` retries the group on a fresh connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from flowml.store import _pg_arrays
from flowml.store.tables import LATEST_UPSERT, POINT_COLUMNS, PointRow

__all__ = [
    "UNNEST_POINTS",
    "can_write_points",
    "copy_metric_rows",
    "lock_runs",
    "point_statements",
    "write_points",
]


_METRIC_COLUMNS = f"metrics {POINT_COLUMNS}"
_SAVEPOINT = "flowml_metrics"


@contextlib.contextmanager
def _driver_errors(session: Session, statement: str) -> Iterator[Any]:
    """The session's psycopg connection; its errors leave as SQLAlchemy would raise them."""
    import psycopg

    conn = session.connection()
    pg = conn.connection.driver_connection
    try:
        yield pg
    except psycopg.Error as exc:
        gone = conn.dialect.is_disconnect(exc, pg, None)  # type: ignore[arg-type]
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            statement, None, exc, psycopg.Error, connection_invalidated=gone, dialect=conn.dialect
        ) from exc


def lock_runs(session: Session, run_ids: Sequence[str], *, savepoint: bool) -> dict[str, str]:
    """Each run's lifecycle stage, its row locked ``FOR KEY SHARE`` until the transaction ends.

    ``metrics`` has no foreign key to ``runs`` on PostgreSQL (see ``MetricRow``): this lock, taken
    once per run and group, is what keeps a concurrent hard delete of the run from leaving the new
    points behind (the delete waits for this transaction, then deletes the run's metrics too).
    With ``savepoint``, the savepoint :func:`copy_metric_rows` needs is opened in the same exchange.
    """
    ids = sorted(run_ids)  # one lock order for every writer
    marks = ", ".join(["%s"] * len(ids))
    sql = f"SELECT run_id, lifecycle_stage FROM runs WHERE run_id IN ({marks}) ORDER BY run_id FOR KEY SHARE"
    with _driver_errors(session, sql) as pg, pg.cursor() as cur:
        with pg.pipeline():
            cur.execute(sql, ids)
            if savepoint:
                pg.execute(f"SAVEPOINT {_SAVEPOINT}")
        return {run_id: stage for run_id, stage in cur.fetchall()}


def can_write_points(session: Session) -> bool:
    """Whether :func:`write_points` can run in this session: PostgreSQL, and nothing sent yet in
    its transaction (the pipeline runs in autocommit mode)."""
    from psycopg.pq import TransactionStatus

    if session.get_bind().dialect.name != "postgresql":
        return False
    pg = session.connection().connection.driver_connection
    return pg is not None and bool(pg.info.transaction_status == TransactionStatus.IDLE)


#: The six point columns as array parameters (``_pg_arrays.point_arrays``), read back as rows.
UNNEST_POINTS = (
    "unnest(%s::varchar[], %s::varchar[], %s::int8[], %s::int8[], %s::float8[], %s::bool[]) "
    'AS u(run_id, "key", step, "timestamp", "value", is_nan)'
)
# Only the rows of runs in the given stage (locked by the exchange's first statement).
_OF_LIVE_RUNS = "WHERE u.run_id IN (SELECT run_id FROM runs WHERE run_id = ANY(%s) AND lifecycle_stage = %s)"
_LOCK_FOR_POINTS = "SELECT run_id, lifecycle_stage FROM runs WHERE run_id = ANY(%s) ORDER BY run_id FOR SHARE"


def write_points(
    session: Session,
    run_ids: set[str],
    rows: Sequence[PointRow],
    latest_rows: Sequence[PointRow],
    *,
    active: str,
) -> dict[str, str] | None:
    """Write a group's metric points and newest points, and COMMIT, in one pipelined exchange.

    Returns each run's lifecycle stage: the caller refuses the batches of runs that are missing or
    not ``active``, and their rows are left out in SQL by the same test. The runs are locked
    ``FOR SHARE`` first, so no stage can change between that read and the inserts (READ COMMITTED
    takes a snapshot per statement). The statements run in autocommit mode inside the pipeline:
    PostgreSQL makes everything up to its Sync one implicit transaction, committed at the Sync or
    rolled back whole on an error, which leaves the session's transaction with nothing to commit.

    The points go in with a plain ``INSERT`` (``ON CONFLICT DO NOTHING`` costs the backend ~50% more
    per row): when one is stored already (a client retrying a batch), nothing is written and this
    returns ``None``, and the caller writes the group the general way (``COPY``, then
    ``ON CONFLICT DO NOTHING``). So ``Database.write`` may also retry the group after losing the
    connection, even if the commit had gone through.
    """
    import psycopg

    (lock, lock_params), *inserts = point_statements(run_ids, rows, latest_rows, active)
    with _driver_errors(session, lock) as pg, pg.cursor() as cur:
        pg.autocommit = True  # the pipeline's statements are its own transaction (see above)
        try:
            with pg.pipeline():
                cur.execute(lock, lock_params)
                for sql, params in inserts:
                    pg.execute(sql, params)
        except psycopg.errors.UniqueViolation:
            return None
        finally:
            with contextlib.suppress(psycopg.Error):  # a lost connection is invalidated anyway
                pg.autocommit = False
        return {run_id: stage for run_id, stage in cur.fetchall()}


def point_statements(
    run_ids: set[str], rows: Sequence[PointRow], latest_rows: Sequence[PointRow], active: str
) -> list[tuple[str, tuple[Any, ...]]]:
    """:func:`write_points`' statements and parameters, the runs' lock first (it returns the stages)."""
    ids = _pg_arrays.text_array(sorted(run_ids))
    unique = list(dict.fromkeys(rows))  # the same point twice in a group would fail the INSERT too
    statements: list[tuple[str, tuple[Any, ...]]] = [(_LOCK_FOR_POINTS, (ids,))]
    if unique:
        statements.append(
            (
                f"INSERT INTO {_METRIC_COLUMNS} SELECT u.* FROM {UNNEST_POINTS} {_OF_LIVE_RUNS}",
                (*_pg_arrays.point_arrays(unique), ids, active),
            )
        )
    if latest_rows:
        statements.append(
            (
                f"INSERT INTO latest_metrics {POINT_COLUMNS} SELECT u.* FROM {UNNEST_POINTS} "
                f"{_OF_LIVE_RUNS} {LATEST_UPSERT}",
                (*_pg_arrays.point_arrays(latest_rows), ids, active),
            )
        )
    return statements


def copy_metric_rows(session: Session, rows: list[PointRow]) -> None:
    """A binary ``COPY`` of the rows, the cheapest way in (an executemany runs one statement per
    row; ``INSERT ... ON CONFLICT`` costs ~25% more per row). Needs :func:`lock_runs`' savepoint.

    ``COPY`` has no ``ON CONFLICT``: a point already stored (a client retrying a batch) fails it,
    and then the rows go in again with ``INSERT ... ON CONFLICT DO NOTHING``, read from one JSON
    parameter (±inf as the strings float8 reads: JSON has no infinities). The savepoint is left
    open: releasing it would cost a round trip, and the transaction ends soon anyway.
    """
    import psycopg

    unique = list(dict.fromkeys(rows))  # the same point twice in a group would fail the COPY too
    copy_sql = f"COPY {_METRIC_COLUMNS} FROM STDIN (FORMAT BINARY)"
    with _driver_errors(session, copy_sql) as pg, pg.cursor() as cur:
        try:
            with cur.copy(copy_sql) as copy:
                copy.set_types(["varchar", "varchar", "int8", "int8", "float8", "bool"])
                for row in unique:
                    copy.write_row(row)
        except psycopg.errors.UniqueViolation:
            cur.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            cur.execute(
                f"INSERT INTO {_METRIC_COLUMNS} SELECT r, k, s, t, v, n "
                "FROM json_to_recordset(%s::json) "
                "AS x(r varchar, k varchar, s bigint, t bigint, v float8, n boolean) "
                "ON CONFLICT DO NOTHING",
                (_rows_json(unique),),
            )


def _rows_json(rows: list[PointRow]) -> str:
    return orjson.dumps(
        [
            {
                "r": r,
                "k": k,
                "s": s,
                "t": t,
                "n": n,
                "v": v if v - v == 0 else f"{v}".replace("inf", "Infinity"),
            }
            for r, k, s, t, v, n in rows
        ]
    ).decode()
