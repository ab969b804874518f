"""Populate a search-benchmark store with N runs by bulk SQL (not through a client).

    .venv/bin/python benchmarks/search/populate.py --runs 10000 --backend sqlite|postgres|mlflow

* ``sqlite``: a flowml store at ``<dir>/flowml-<N>.db``; the schema comes from
  ``flowml.store.Database`` (so it is exactly flowml's), rows go in with ``executemany``.
* ``mlflow``: an MLflow 3 store at ``<dir>/mlflow-<N>.db``; the schema comes from
  ``MlflowClient.create_experiment`` (MLflow's own migrations), rows go in with ``executemany``.
* ``postgres``: a flowml store in a private PostgreSQL cluster (``tests/fixtures/postgres.py``),
  loaded with ``COPY``. The cluster dies with this process, so on its own this only measures the
  load; ``bench.py --backend postgres`` populates and times in one process.

Secondary indexes are dropped before the load and re-created from their own DDL afterwards
(identical schema, much faster load). SQLite files get no ``ANALYZE`` (flowml never runs it, so
users' files have no statistics); PostgreSQL gets ``VACUUM ANALYZE``, which autovacuum would do
on its own after a load this size. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _data import BASE_TIME, EXPERIMENT_NAME, chunks  # noqa: E402

__all__ = [
    "EXPERIMENT_NAME",
    "is_populated",
    "populate_flowml_postgres",
    "populate_flowml_sqlite",
    "populate_mlflow_sqlite",
    "sqlite_path",
]

DEFAULT_DIR = "/tmp/flowml-search-bench"
_SECONDARY_INDEXES = [
    "ix_runs_experiment_start",
    "ix_params_experiment_key_value",
    "ix_latest_metrics_key_value",
]


def _params_with_start(chunk: Any) -> list[tuple[str, str, str, int]]:
    """The chunk's params as (run_id, key, value, start_time): params carry their run's start time."""
    start = {run_id: st for run_id, _name, st in chunk.runs}
    return [(r, k, v, start[r]) for r, k, v in chunk.params]


def sqlite_path(db_dir: str, backend: str, n_runs: int) -> Path:
    return Path(db_dir) / f"{backend}-{n_runs}.db"


def _done_marker(path: Path) -> Path:
    return path.with_name(path.name + ".done")


def _stamp(n_runs: int) -> str:
    from flowml.store import HEAD_REVISION

    return f"{n_runs} {HEAD_REVISION}"


def is_populated(path: Path, n_runs: int, backend: str = "sqlite") -> bool:
    """Populated with ``n_runs`` runs (and, for flowml, at the current schema revision)."""
    marker = _done_marker(path)
    if not (marker.exists() and path.exists()):
        return False
    return backend == "mlflow" or marker.read_text() == _stamp(n_runs)


def _sqlite_fast(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    conn.execute("PRAGMA foreign_keys=OFF")


def _drop_sqlite_indexes(conn: sqlite3.Connection, names: list[str]) -> list[str]:
    ddl = []
    for name in names:
        query = "SELECT sql FROM sqlite_master WHERE type='index' AND name=?"
        (sql,) = conn.execute(query, (name,)).fetchone()
        ddl.append(sql)
        conn.execute(f'DROP INDEX "{name}"')
    return ddl


def populate_flowml_sqlite(path: Path, n_runs: int) -> dict[str, Any]:
    from flowml.store import Database

    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, _done_marker(path), Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    db = Database(f"sqlite:///{path}", str(path.parent / "artifacts"))
    _ = db.engine  # creates the schema at the migration head
    db.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    _sqlite_fast(conn)
    conn.execute("BEGIN")
    ddl = _drop_sqlite_indexes(conn, _SECONDARY_INDEXES)
    conn.execute(
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, "
        "creation_time, last_update_time) VALUES (1, ?, ?, 'active', ?, ?)",
        (EXPERIMENT_NAME, str(path.parent / "artifacts" / "1"), BASE_TIME, BASE_TIME),
    )
    for chunk in chunks(n_runs):
        conn.executemany(
            "INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, "
            "artifact_uri, lifecycle_stage) VALUES (?, 1, ?, 'bench', 'FINISHED', ?, ?, ?, 'active')",
            [(r, name, st, st + 500, f"/tmp/artifacts/1/{r}/artifacts") for r, name, st in chunk.runs],
        )
        conn.executemany(
            "INSERT INTO params (run_id, key, value, experiment_id, start_time) VALUES (?, ?, ?, 1, ?)",
            _params_with_start(chunk),
        )
        conn.executemany("INSERT INTO run_tags (run_id, key, value) VALUES (?, ?, ?)", chunk.tags)
        points = [(r, k, 0, BASE_TIME, v, nan) for r, k, v, nan in chunk.metrics]
        conn.executemany(
            "INSERT INTO metrics (run_id, key, step, timestamp, value, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
            points,
        )
        conn.executemany(
            "INSERT INTO latest_metrics (run_id, key, step, timestamp, value, is_nan) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            points,
        )
    for sql in ddl:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")  # what flowml runs with
    conn.close()
    _done_marker(path).write_text(_stamp(n_runs))
    return {"experiment_id": "1", "load_s": round(time.perf_counter() - t0, 1), "path": str(path)}


def populate_mlflow_sqlite(path: Path, n_runs: int) -> dict[str, Any]:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in (path, _done_marker(path)):
        stale.unlink(missing_ok=True)
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    exp_id = client.create_experiment(EXPERIMENT_NAME, artifact_location=str(path.parent / "mlartifacts"))
    conn = sqlite3.connect(path, isolation_level=None)
    _sqlite_fast(conn)
    conn.execute("BEGIN")
    ddl = _drop_sqlite_indexes(
        conn,
        [
            "index_params_run_uuid",
            "index_tags_run_uuid",
            "index_metrics_run_uuid",
            "index_metrics_run_uuid_key_step",
            "index_latest_metrics_run_uuid",
        ],
    )
    for chunk in chunks(n_runs):
        conn.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, "
            "status, start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
            "VALUES (?, ?, 'UNKNOWN', '', '', 'bench', 'FINISHED', ?, ?, '', 'active', ?, ?)",
            [(r, n, st, st + 500, f"/tmp/mlartifacts/{r}/artifacts", exp_id) for r, n, st in chunk.runs],
        )
        conn.executemany("INSERT INTO params (run_uuid, key, value) VALUES (?, ?, ?)", chunk.params)
        conn.executemany("INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?)", chunk.tags)
        points = [(r, k, v, BASE_TIME, 0, nan) for r, k, v, nan in chunk.metrics]
        conn.executemany(
            "INSERT INTO metrics (run_uuid, key, value, timestamp, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
            points,
        )
        conn.executemany(
            "INSERT INTO latest_metrics (run_uuid, key, value, timestamp, step, is_nan) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            points,
        )
    for sql in ddl:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    _done_marker(path).write_text(str(n_runs))
    return {"experiment_id": exp_id, "load_s": round(time.perf_counter() - t0, 1), "path": str(path)}


def populate_flowml_postgres(uri: str, n_runs: int) -> dict[str, Any]:
    """Load N runs into an empty PostgreSQL database at ``uri`` (``postgresql+psycopg://``)."""
    import psycopg

    from flowml.store import Database

    t0 = time.perf_counter()
    db = Database(uri, "/tmp/flowml-search-bench/artifacts")
    _ = db.engine
    db.dispose()
    dsn = uri.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        names = _SECONDARY_INDEXES
        ddl = [
            row[0]
            for row in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = ANY(%s)", (names,)
            ).fetchall()
        ]
        for name in names:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute(
            "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, "
            "creation_time, last_update_time) VALUES (1, %s, '/tmp/a/1', 'active', %s, %s)",
            (EXPERIMENT_NAME, BASE_TIME, BASE_TIME),
        )
        cur = conn.cursor()
        for chunk in chunks(n_runs):
            with cur.copy(
                "COPY runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, "
                "artifact_uri, lifecycle_stage) FROM STDIN"
            ) as copy:
                for r, name, st in chunk.runs:
                    copy.write_row(
                        (r, 1, name, "bench", "FINISHED", st, st + 500, f"/tmp/a/1/{r}/artifacts", "active")
                    )
            with cur.copy("COPY params (run_id, key, value, experiment_id, start_time) FROM STDIN") as copy:
                for r, k, v, st in _params_with_start(chunk):
                    copy.write_row((r, k, v, 1, st))
            with cur.copy("COPY run_tags (run_id, key, value) FROM STDIN") as copy:
                for row in chunk.tags:
                    copy.write_row(row)
            for table in ("metrics", "latest_metrics"):
                with cur.copy(
                    f"COPY {table} (run_id, key, step, timestamp, value, is_nan) FROM STDIN"
                ) as copy:
                    for r, k, v, nan in chunk.metrics:
                        copy.write_row((r, k, 0, BASE_TIME, v, nan))
        for sql in ddl:
            conn.execute(sql)
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {"experiment_id": "1", "load_s": round(time.perf_counter() - t0, 1)}


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "mlflow"), default="sqlite")
    parser.add_argument("--dir", default=DEFAULT_DIR, help="where SQLite files go (keep it under /tmp)")
    args = parser.parse_args()
    if args.backend == "postgres":
        from tests.fixtures.postgres import PostgresCluster

        cluster = PostgresCluster()
        cluster.start()
        try:
            out = populate_flowml_postgres(cluster.create_database("bench"), args.runs)
        finally:
            cluster.stop()
    elif args.backend == "mlflow":
        out = populate_mlflow_sqlite(sqlite_path(args.dir, "mlflow", args.runs), args.runs)
    else:
        out = populate_flowml_sqlite(sqlite_path(args.dir, "flowml", args.runs), args.runs)
    print(json.dumps({"backend": args.backend, "runs": args.runs, **out}))


if __name__ == "__main__":
    main()
