"""Time the two issue-3 search queries through the public client, on a populated store.

    .venv/bin/python benchmarks/search/bench.py --runs 10000 --backend sqlite|postgres|mlflow

* ``sqlite`` / ``mlflow``: the store file made by ``populate.py`` under ``--dir`` (populated
  first if missing), queried through ``FlowmlClient`` / ``mlflow.tracking.MlflowClient``.
* ``postgres``: a private PostgreSQL cluster (``tests/fixtures/postgres.py``) is started,
  populated and queried by ``FlowmlClient`` in this one process, then stopped.

Each query runs ``--warmup`` times, then ``--reps`` timed repetitions of the full
``client.search_runs(...)`` call (search query + loading the page's runs); the JSON reports the
median (p50), min and max in ms. For flowml it also reports the two halves on their own,
through the store functions the client calls: ``ids_ms`` (``filters.search_run_ids``: the one
search query) and ``load_ms`` (``tracking.load_runs``: the 2 queries loading the page's runs with
their params, tags and latest metrics), and the ``EXPLAIN QUERY PLAN`` / ``EXPLAIN`` of the search query.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
for p in (str(REPO), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import populate  # noqa: E402

QUERIES: dict[str, dict[str, Any]] = {
    "filter": {
        "filter_string": "metrics.m1 > 0.5 and params.p1 = 'a'",
        "order_by": None,
        "max_results": 1000,
    },
    "order": {"filter_string": "", "order_by": ["metrics.m2 DESC"], "max_results": 100},
}


def _time(fn: Callable[[], Any], warmup: int, reps: int) -> tuple[dict[str, float], Any]:
    result = None
    for _ in range(warmup):
        result = fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t0) * 1000)
    stats = {
        "p50_ms": round(statistics.median(samples), 2),
        "min_ms": round(min(samples), 2),
        "max_ms": round(max(samples), 2),
    }
    return stats, result


def explain(db: Any, dialect: str, experiment_id: str, query: dict[str, Any]) -> list[str]:
    from sqlalchemy import text

    from flowml.entities import ViewType
    from flowml.store import filters

    stmt = filters.run_search_statement(
        dialect, [int(experiment_id)], query["filter_string"] or None, ViewType.ACTIVE_ONLY,
        query["max_results"], query["order_by"],
    )  # fmt: skip
    assert stmt is not None
    sql = str(stmt.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
    with db.engine.connect() as conn:
        if dialect == "sqlite":
            return [f"{r[0]}|{r[1]}| {r[3]}" for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql))]
        return [r[0] for r in conn.execute(text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql))]


def bench_flowml(uri: str, experiment_id: str, warmup: int, reps: int) -> dict[str, Any]:
    os.environ["FLOWML_ARTIFACT_ROOT"] = "/tmp/flowml-search-bench/artifacts"
    from flowml.client import FlowmlClient
    from flowml.entities import ViewType
    from flowml.store import filters, tracking

    client = FlowmlClient(uri)
    db = client.backend.db  # type: ignore[attr-defined]
    dialect = db.dialect
    out: dict[str, Any] = {}
    for name, q in QUERIES.items():

        def call(q: dict[str, Any] = q) -> Any:
            return client.search_runs([experiment_id], q["filter_string"], max_results=q["max_results"],
                                      order_by=q["order_by"])  # fmt: skip

        stats, page = _time(call, warmup, reps)

        def ids(q: dict[str, Any] = q) -> list[str]:
            with db.read() as s:
                return filters.search_run_ids(s, [int(experiment_id)], q["filter_string"] or None,
                                              ViewType.ACTIVE_ONLY, q["max_results"], q["order_by"],
                                              None)[0]  # fmt: skip

        id_stats, run_ids = _time(ids, warmup, reps)

        def load(run_ids: list[str] = run_ids) -> Any:
            with db.read() as s:
                return tracking.load_runs(s, run_ids)

        load_stats, _ = _time(load, warmup, reps)
        out[name] = {
            **q,
            **stats,
            "results": len(page),
            "first_run_ids": [r.info.run_id for r in page[:3]],
            "ids_ms": id_stats["p50_ms"],
            "load_ms": load_stats["p50_ms"],
            "plan": explain(db, dialect, experiment_id, q),
        }
    client.backend.close()
    return out


def bench_mlflow(uri: str, experiment_id: str, warmup: int, reps: int) -> dict[str, Any]:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    out: dict[str, Any] = {}
    for name, q in QUERIES.items():

        def call(q: dict[str, Any] = q) -> Any:
            return client.search_runs([experiment_id], q["filter_string"], max_results=q["max_results"],
                                      order_by=q["order_by"])  # fmt: skip

        stats, page = _time(call, warmup, reps)
        out[name] = {**q, **stats, "results": len(page), "first_run_ids": [r.info.run_id for r in page[:3]]}
    return out


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "mlflow"), default="sqlite")
    parser.add_argument("--dir", default=populate.DEFAULT_DIR, help="where SQLite files live (under /tmp)")
    parser.add_argument("--reps", type=int, default=11)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-plan", action="store_true", help="leave the query plans out of the JSON")
    args = parser.parse_args()
    if args.reps < 9:
        parser.error("--reps must be at least 9")
    result: dict[str, Any] = {
        "backend": args.backend,
        "runs": args.runs,
        "reps": args.reps,
        "warmup": args.warmup,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    if args.backend == "postgres":
        from tests.fixtures.postgres import PostgresCluster

        cluster = PostgresCluster()
        cluster.start()
        try:
            uri = cluster.create_database("bench")
            result["populate"] = populate.populate_flowml_postgres(uri, args.runs)
            result["queries"] = bench_flowml(uri, "1", args.warmup, args.reps)
        finally:
            cluster.stop()
    else:
        impl = "mlflow" if args.backend == "mlflow" else "flowml"
        path = populate.sqlite_path(args.dir, impl, args.runs)
        if not populate.is_populated(path, args.runs, impl):
            fill = populate.populate_mlflow_sqlite if impl == "mlflow" else populate.populate_flowml_sqlite
            result["populate"] = fill(path, args.runs)
        uri = f"sqlite:///{path}"
        if impl == "mlflow":
            import sqlite3

            with sqlite3.connect(path) as conn:
                (exp_id,) = conn.execute(
                    "SELECT experiment_id FROM experiments WHERE name = ?", (populate.EXPERIMENT_NAME,)
                ).fetchone()
            result["queries"] = bench_mlflow(uri, str(exp_id), args.warmup, args.reps)
        else:
            result["queries"] = bench_flowml(uri, "1", args.warmup, args.reps)
    if args.no_plan:
        for q in result["queries"].values():
            q.pop("plan", None)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
