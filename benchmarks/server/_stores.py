"""Stores for the server benchmark: a fresh SQLite file, or a database in a private PostgreSQL cluster.

Both implementations get the same 10k-run search corpus (``benchmarks/search/_data.py``), loaded in
bulk before their server starts: SQLite with ``executemany`` (``benchmarks/search/populate.py``),
PostgreSQL with ``COPY`` (flowml: ``populate.py``; MLflow: :func:`populate_mlflow_postgres`, into the
schema MLflow's own migrations create).

The cluster is ``tests/fixtures/postgres.py``'s (initdb under /tmp, loopback only, run as the
``postgres`` OS user when we are root). Unlike the test fixture it keeps PostgreSQL's durable
defaults (``fsync``, ``synchronous_commit``, ``full_page_writes`` on) unless ``durable=False``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
for extra in (REPO, HERE.parent / "search"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import populate as search_populate  # type: ignore[import-not-found]  # noqa: E402
from _data import BASE_TIME, EXPERIMENT_NAME, chunks  # type: ignore[import-not-found]  # noqa: E402

__all__ = ["populate", "postgres_cluster"]

DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


@contextlib.contextmanager
def postgres_cluster(durable: bool = True) -> Iterator[Any]:
    from tests.fixtures.postgres import PostgresCluster

    cluster = PostgresCluster(DURABLE if durable else None)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def populate(impl: str, store: str, root: Path, runs: int, cluster: Any | None) -> tuple[str, str]:
    """Create and fill ``impl``'s store; returns (store URI, search experiment id)."""
    if store == "sqlite":
        path = root / "store.db"
        fill = (
            search_populate.populate_flowml_sqlite
            if impl == "flowml"
            else search_populate.populate_mlflow_sqlite
        )
        return f"sqlite:///{path}", str(fill(path, runs)["experiment_id"])
    assert cluster is not None
    uri = str(cluster.create_database(f"bench_{impl}"))
    if impl == "flowml":
        return uri, str(search_populate.populate_flowml_postgres(uri, runs)["experiment_id"])
    return uri, populate_mlflow_postgres(uri, runs, root)


def populate_mlflow_postgres(uri: str, n_runs: int, root: Path) -> str:
    """MLflow's schema (its migrations, via ``MlflowClient``), then the corpus with ``COPY``."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import psycopg
    from mlflow.tracking import MlflowClient

    t0 = time.perf_counter()
    exp_id = MlflowClient(tracking_uri=uri).create_experiment(
        EXPERIMENT_NAME, artifact_location=str(root / "mlartifacts")
    )
    with psycopg.connect(uri.replace("postgresql+psycopg://", "postgresql://")) as conn:
        cur = conn.cursor()
        for chunk in chunks(n_runs):
            with cur.copy(
                "COPY runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
                "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
                "FROM STDIN"
            ) as copy:
                for r, name, st in chunk.runs:
                    copy.write_row(
                        (r, name, "UNKNOWN", "", "", "bench", "FINISHED", st, st + 500, "", "active",
                         f"{root}/mlartifacts/{r}/artifacts", int(exp_id))
                    )  # fmt: skip
            for table, rows in (("params", chunk.params), ("tags", chunk.tags)):
                with cur.copy(f"COPY {table} (run_uuid, key, value) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            for table in ("metrics", "latest_metrics"):
                with cur.copy(
                    f"COPY {table} (run_uuid, key, value, timestamp, step, is_nan) FROM STDIN"
                ) as copy:
                    for r, k, v, nan in chunk.metrics:
                        copy.write_row((r, k, v, BASE_TIME, 0, nan))
        conn.commit()
    with psycopg.connect(uri.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"mlflow postgres corpus: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return str(exp_id)
