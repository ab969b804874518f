"""Loading runs with their params, tags and latest metrics: two driver-level queries per page.

A search page is up to 50,000 runs, so this is written for speed (it was ~70 ms for 1000 runs
through the ORM; see ``benchmarks/search/README.md``):

* **Two statements, whatever the page size.** One reads the runs' params and tags aggregated into
  one JSON object per run and table (``json_group_object`` on SQLite, ``json_object_agg`` on
  PostgreSQL; for a search page on SQLite all of them in one JSON array, one row, one
  ``orjson.loads``); the other reads the latest metric rows. The run ids travel as ONE parameter
  (a JSON array read by ``json_each`` on SQLite, an array for ``= ANY`` on PostgreSQL), so a page
  never builds a statement with thousands of placeholders.
* **In parallel on SQLite**: the params/tags statement is SQLite's own C work with the GIL
  released, the metric rows mostly Python building tuples; a search page of 100+ runs runs the
  first on the database's side reader (:mod:`flowml.store.side_read`) while it fetches the second.
* **Metric values are never sent through JSON.** SQLite before 3.43 writes REAL values in JSON
  (and as text) with 15 significant digits, which does not round-trip a float; the metric rows
  carry the stored REAL as is. NaN is stored as ``0.0`` with ``is_nan`` set.
* **The DBAPI cursor, not SQLAlchemy rows**, inside the session's transaction, and entities
  built by filling the frozen dataclasses' slots through their descriptors (half the cost of
  their generated ``__init__``, which calls ``object.__setattr__`` per field).
  ``tests/store/test_run_load.py`` checks that they equal what the constructors build.
* **Latest-metric points are built when first read** (:class:`LatestPoints`): a page of 1000 runs
  with 5 metrics each holds 5000 of them, and most callers only read ``run.data.metrics``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import orjson
from sqlalchemy.orm import Session

from flowml.entities import NO_LINKS, Metric, Run, RunData, RunInfo
from flowml.store.side_read import SideReader

__all__ = ["RUN_ROW_WIDTH", "LatestPoints", "load_page", "load_runs"]

logger = logging.getLogger(__name__)

_NAN = float("nan")

_RUN_COLUMNS = ", ".join(f"r.{name}" for name in RunInfo.__dataclass_fields__)  # named as the fields
#: How many leading columns of a run row hold the run itself (``run_id`` then ``RunInfo``'s fields).
RUN_ROW_WIDTH = 9


def _children(owner: str, agg: str, cast: str = "") -> str:
    """The two JSON objects of a run's params and tags, correlated on ``owner``."""
    return (
        f'(SELECT {agg}(p."key", p.value){cast} FROM params AS p WHERE p.run_id = {owner}), '
        f'(SELECT {agg}(t."key", t.value){cast} FROM run_tags AS t WHERE t.run_id = {owner})'
    )


def _json_object(table: str, owner: str) -> str:
    """SQLite: the JSON object of a run's rows of ``table`` (params or tags), ``{}`` for none."""
    rows = f'SELECT json_group_object(c."key", c.value) FROM {table} AS c WHERE c.run_id = {owner}'
    return f"coalesce(({rows}), '{{}}')"


# A metric row is (position of its run in the ids, key, value or NULL for NaN, timestamp, step).
_VALUE = "CASE WHEN m.is_nan THEN NULL ELSE m.value END"
_SQLITE_CHILDREN = _children("{owner}", "json_group_object")
_PG_CHILDREN = _children("{owner}", "json_object_agg", "::text")
# Per dialect: runs with params and tags by id; params and tags by position in the ids (the runs
# come with a search page); latest metrics by position.
_SQL = {
    "sqlite": (
        f"SELECT {_RUN_COLUMNS}, {_SQLITE_CHILDREN.format(owner='r.run_id')} "
        "FROM runs AS r WHERE r.run_id IN (SELECT value FROM json_each(?))",
        # ONE row holding one JSON array [position, params, tags, position, ...]: SQLite builds it
        # in C (with the GIL released: this is the statement the side reader runs), and one
        # orjson.loads beats fetching and parsing a row per run
        "SELECT '[' || group_concat(j.\"key\" || ',' || "
        f"{_json_object('params', 'j.value')} || ',' || {_json_object('run_tags', 'j.value')}, ',') || ']' "
        "FROM json_each(?) AS j",
        # CROSS JOIN: SQLite must walk the ids and probe the primary key, never the other way round
        f'SELECT j."key", m."key", {_VALUE}, m."timestamp", m.step '
        "FROM json_each(?) AS j CROSS JOIN latest_metrics AS m ON m.run_id = j.value",
    ),
    "postgresql": (
        f"SELECT {_RUN_COLUMNS}, {_PG_CHILDREN.format(owner='r.run_id')} "
        "FROM runs AS r WHERE r.run_id = ANY(%s)",
        f"SELECT j.n - 1, {_PG_CHILDREN.format(owner='j.run_id')} "
        "FROM unnest(%s::text[]) WITH ORDINALITY AS j(run_id, n)",
        f'SELECT j.n - 1, m."key", {_VALUE}, m."timestamp", m.step '
        "FROM unnest(%s::text[]) WITH ORDINALITY AS j(run_id, n) "
        "JOIN latest_metrics AS m ON m.run_id = j.run_id",
    ),
}
#: Pages this large read their params and tags on the side reader (when it is free) while the
#: metric rows are fetched; for smaller ones handing the statement over costs more than it saves.
SIDE_READ_MIN_RUNS = 100

# -- entity constructors: the dataclasses' own fields, set through their slot descriptors --------
_new = object.__new__
(
    _info_run_id,
    _info_experiment_id,
    _info_run_name,
    _info_user_id,
    _info_status,
    _info_start_time,
    _info_end_time,
    _info_artifact_uri,
    _info_lifecycle_stage,
) = (RunInfo.__dict__[name].__set__ for name in RunInfo.__dataclass_fields__)
_data_metrics, _data_params, _data_tags, _data_latest = (
    RunData.__dict__[name].__set__ for name in RunData.__dataclass_fields__
)
_run_info_set, _run_data_set, _run_links_set = (
    Run.__dict__[name].__set__ for name in Run.__dataclass_fields__
)
_metric_key, _metric_value, _metric_timestamp, _metric_step = (
    Metric.__dict__[name].__set__ for name in Metric.__dataclass_fields__
)


def _metric(key: str, value: float, timestamp: int, step: int) -> Metric:
    metric: Metric = _new(Metric)
    _metric_key(metric, key)
    _metric_value(metric, value)
    _metric_timestamp(metric, timestamp)
    _metric_step(metric, step)
    return metric


# (position of the run in the ids, key, value or None for NaN, timestamp, step): a metrics row.
_MetricRow = tuple[int, str, float | None, int, int]


class LatestPoints(Mapping[str, Metric]):
    """A run's latest metric points (``RunData.latest_metrics``), made into :class:`Metric`
    objects the first time any is read; iterating keys, ``len`` and ``in`` build nothing.

    Compares equal to the plain dict of the same points, has its repr, and pickles/copies as that
    dict.
    """

    __slots__ = ("_points", "_rows")

    def __init__(self, rows: dict[str, _MetricRow]) -> None:
        self._rows = rows
        self._points: dict[str, Metric] | None = None

    def _built(self) -> dict[str, Metric]:
        points = self._points
        if points is None:
            points = {
                key: _metric(key, _NAN if row[2] is None else row[2], row[3], row[4])
                for key, row in self._rows.items()
            }
            self._points = points
        return points

    def __getitem__(self, key: str) -> Metric:
        return self._built()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __repr__(self) -> str:
        return repr(self._built())

    def __reduce__(self) -> tuple[type[dict[str, Metric]], tuple[dict[str, Metric]]]:
        return dict, (self._built(),)

    def copy(self) -> dict[str, Metric]:
        """A plain dict of the points (``RunData.latest_metrics`` used to be one)."""
        return dict(self._built())


_latest_rows, _latest_points = (LatestPoints.__dict__[name].__set__ for name in ("_rows", "_points"))


# -- loading ---------------------------------------------------------------------------------
# A run's params and tags, parsed (``None``: not read, the run has none).
_Children = tuple[dict[str, str], dict[str, str]] | None


def load_runs(session: Session, run_ids: Sequence[str]) -> list[Run]:
    """The runs ``run_ids`` (in that order; unknown ids are left out) with their latest metrics,
    params and tags, read in the session's transaction: two statements."""
    if not run_ids:
        return []
    ids = list(run_ids)
    cursor, dialect = _cursor(session)
    try:
        arg = _ids_argument(dialect, ids)
        cursor.execute(_SQL[dialect][0], (arg,))
        by_id = {row[0]: row for row in cursor.fetchall()}
        cursor.execute(_SQL[dialect][2], (arg,))
        metric_rows = cursor.fetchall()
    finally:
        cursor.close()
    rows = [by_id.get(run_id) for run_id in ids]
    width = RUN_ROW_WIDTH
    children = [None if row is None else _parsed(row[width], row[width + 1]) for row in rows]
    return _build(rows, children, metric_rows)


def load_page(
    session: Session, run_rows: Sequence[Sequence[Any]], side: SideReader | None = None
) -> list[Run]:
    """Runs from rows that already hold them (``RUN_ROW_WIDTH`` leading columns: a search page
    reads them while it walks ``runs``), with their params, tags and latest metrics: two statements.

    With ``side`` (SQLite), a page of :data:`SIDE_READ_MIN_RUNS` or more reads its params and tags
    there, in parallel with the metric rows, when the side reader is free."""
    if not run_rows:
        return []
    ids = [row[0] for row in run_rows]
    cursor, dialect = _cursor(session)
    try:
        arg = _ids_argument(dialect, ids)
        if dialect == "postgresql":
            cursor.execute(_SQL[dialect][1], (arg,))
            children: list[_Children] = [None] * len(ids)
            for position, params, tags in cursor.fetchall():
                children[position] = _parsed(params, tags)
            cursor.execute(_SQL[dialect][2], (arg,))
            metric_rows = cursor.fetchall()
        else:
            statement = _SQL[dialect][1]
            parallel = side is not None and len(ids) >= SIDE_READ_MIN_RUNS
            pending = side.submit(statement, (arg,)) if parallel and side is not None else None
            if pending is None:
                cursor.execute(statement, (arg,))
                children_json = cursor.fetchone()[0]
            cursor.execute(_SQL[dialect][2], (arg,))
            metric_rows = cursor.fetchall()
            if pending is not None:
                children_json = _side_result(pending, cursor, statement, arg)
            children = _children_by_position(children_json, len(ids))
    finally:
        cursor.close()
    return _build(run_rows, children, metric_rows)


def _cursor(session: Session) -> tuple[Any, str]:
    """A DBAPI cursor in the session's transaction, and the :data:`_SQL` dialect key."""
    conn = session.connection()
    dialect = "postgresql" if conn.dialect.name == "postgresql" else "sqlite"
    return conn.connection.cursor(), dialect


def _ids_argument(dialect: str, ids: list[str]) -> Any:
    """The ids as the one statement parameter: an array on PostgreSQL, JSON text on SQLite."""
    return ids if dialect == "postgresql" else orjson.dumps(ids).decode()


def _side_result(pending: Future[Any], cursor: Any, statement: str, arg: str) -> Any:
    """The side reader's result; if it failed, the statement again on the caller's connection
    (the side read is only a speed-up: its error is logged, the caller's own read decides)."""
    try:
        return pending.result()
    except Exception:
        logger.warning("side read failed; reading params and tags serially", exc_info=True)
        cursor.execute(statement, (arg,))
        return cursor.fetchone()[0]


def _children_by_position(children_json: str | None, count: int) -> list[_Children]:
    """The SQLite page statement's ``[position, params, tags, ...]`` array, by position."""
    children: list[_Children] = [None] * count
    flat = orjson.loads(children_json) if children_json else []
    items = iter(flat)
    for position, params, tags in zip(items, items, items, strict=True):
        children[position] = (params, tags)
    return children


def _parsed(params: str | None, tags: str | None) -> tuple[dict[str, str], dict[str, str]]:
    loads = orjson.loads
    return (loads(params) if params else {}), (loads(tags) if tags else {})


def _build(
    rows: Sequence[Sequence[Any] | None],
    children: Sequence[_Children],
    metric_rows: Sequence[_MetricRow],
) -> list[Run]:
    """Runs from their rows (``None``: unknown run, left out), their params and tags (by position)
    and the metric rows (keyed by position)."""
    values: list[dict[str, float]] = [{} for _ in rows]
    points: list[dict[str, _MetricRow]] = [{} for _ in rows]
    current = -1
    run_values = values[0]
    run_points = points[0]
    for metric in metric_rows:  # grouped by run (the ids are walked in order)
        position, key, value = metric[0], metric[1], metric[2]
        if position != current:
            current = position
            run_values = values[position]
            run_points = points[position]
        run_values[key] = _NAN if value is None else value
        run_points[key] = metric
    runs: list[Run] = []
    append, new = runs.append, _new
    for position, row in enumerate(rows):
        if row is None:
            continue
        params, tags = children[position] or ({}, {})
        latest: LatestPoints = new(LatestPoints)
        _latest_rows(latest, points[position])
        _latest_points(latest, None)
        data: RunData = new(RunData)
        _data_metrics(data, values[position])
        _data_params(data, params)
        _data_tags(data, tags)
        _data_latest(data, latest)
        info: RunInfo = new(RunInfo)
        _info_run_id(info, row[0])
        _info_experiment_id(info, str(row[1]))
        _info_run_name(info, row[2])
        _info_user_id(info, row[3])
        _info_status(info, row[4])
        _info_start_time(info, row[5])
        _info_end_time(info, row[6])
        _info_artifact_uri(info, row[7])
        _info_lifecycle_stage(info, row[8])
        run: Run = new(Run)
        _run_info_set(run, info)
        _run_data_set(run, data)
        _run_links_set(run, NO_LINKS)
        append(run)
    logger.debug("loaded %d runs, %d metric rows", len(runs), len(metric_rows))
    return runs
