"""The two issue-3 benchmark queries keep their intended SQLite query plans.

Timing lives in ``benchmarks/search/`` (never asserted in tests); this only catches a plan
regression: the default-order filter must walk ``ix_params_experiment_key_value`` when it has a
param equality and ``ix_runs_experiment_start`` otherwise (no sort of the whole experiment) and a
metric ``order_by`` must read the top-N from
``ix_latest_metrics_key_value`` (no sort of every run).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from flowml.entities import ViewType
from flowml.store import Database, filters


def _plan(tmp_path: Path, filter_string: str | None, order_by: list[str] | None, max_results: int) -> str:
    db = Database(f"sqlite:///{tmp_path / 'plan.db'}", str(tmp_path / "artifacts"))
    stmt = filters.run_search_statement("sqlite", [0], filter_string, ViewType.ACTIVE_ONLY, max_results,
                                        order_by)  # fmt: skip
    assert stmt is not None
    sql = str(stmt.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
    with db.engine.connect() as conn:
        rows = conn.execute(text("EXPLAIN QUERY PLAN " + sql)).all()
    db.dispose()
    return "\n".join(str(r[3]) for r in rows)


def test_filter_in_default_order_walks_the_start_time_index(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "metrics.m1 > 0.5 and tags.t = 'a'", None, 1000)
    # lifecycle_stage is in the index: the walk never reads the runs table
    assert "SEARCH runs USING COVERING INDEX ix_runs_experiment_start (experiment_id=?)" in plan
    assert "TEMP B-TREE" not in plan  # the index gives the order: no sort


def test_param_equality_in_default_order_walks_the_params_index(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "metrics.m1 > 0.5 and params.p1 = 'a'", None, 1000).splitlines()
    assert plan[0] == (
        "SEARCH drive USING COVERING INDEX ix_params_experiment_key_value "
        "(experiment_id=? AND key=? AND value=?)"
    )
    # the metric clause is checked on the params entry, before the run's row is read
    assert plan.index("CORRELATED SCALAR SUBQUERY 1") < plan.index(
        "SEARCH runs USING INDEX sqlite_autoindex_runs_1 (run_id=?)"
    )
    assert not any("TEMP B-TREE" in line or "SCAN" in line for line in plan)


def test_metric_order_reads_top_n_from_the_key_value_index(tmp_path: Path) -> None:
    plan = _plan(tmp_path, None, ["metrics.m2 DESC"], 100)
    lines = plan.splitlines()
    real = lines.index("MATERIALIZE segment_0")
    assert lines[real + 1] == "SEARCH sort_0 USING INDEX ix_latest_metrics_key_value (key=?)"
    assert "SEARCH runs USING INDEX sqlite_autoindex_runs_1 (run_id=?)" in lines[real + 2]
    # the NaN segment reads its few index entries (value stored as 0) and drives the join
    assert "SEARCH sort_0 USING INDEX ix_latest_metrics_key_value (key=? AND value=?)" in plan
    assert "SCAN runs" not in plan
