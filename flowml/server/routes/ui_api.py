"""Endpoints the web UI needs beyond MLflow's API (mounted under ``/api/flowml``).

``GET /metrics/history-downsampled``: a metric's whole history reduced on the server to at most
``max_points`` points (LTTB, keeping first/last and the global min/max), so a 100k-point curve
costs the browser ~1,000 points.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from flowml.client.local import SqlBackend
from flowml.server.deps import BackendDep
from flowml.server.wire import fast_json
from flowml.ui.downsample import downsample

__all__ = ["router"]

router = APIRouter(tags=["ui"])


@router.get("/metrics/history-downsampled")
def history_downsampled(
    backend: BackendDep,
    run_id: str = Query(min_length=1),
    key: str = Query(min_length=1),
    max_points: int = Query(default=1000, ge=3, le=25_000),
    x_axis: Literal["step", "time"] = "step",
) -> Response:
    steps, times, values = _history(backend, run_id, key, x_axis)
    total = len(values)
    steps, times, values, dropped = downsample(steps, times, values, max_points, x_axis)
    out: dict[str, Any] = {
        "run_id": run_id,
        "key": key,
        "x_axis": x_axis,
        "total_points": total,
        "non_finite_points": dropped,
        "steps": steps,
        "timestamps": times,
        "values": values,
    }
    return fast_json(out)


def _history(
    backend: SqlBackend, run_id: str, key: str, x_axis: str
) -> tuple[list[int], list[int], list[float]]:
    """Columns of every point of ``key``, in x order: one index-ordered scan, no entity objects
    (~5x faster than ``get_metric_history`` at 100k points)."""
    from flowml.store.tables import MetricRow

    backend.get_run(run_id)  # RESOURCE_DOES_NOT_EXIST for an unknown run
    table = MetricRow.__table__  # type: ignore[attr-defined]
    c = table.c
    order = (c.step, c.timestamp) if x_axis == "step" else (c.timestamp, c.step)
    query = (
        select(c.step, c.timestamp, c.value, c.is_nan)
        .where(c.run_id == run_id, c.key == key)
        .order_by(*order, c.value)
    )
    with backend.db.read() as session:
        # The DBAPI cursor directly: SQLAlchemy's row processing triples the cost of 100k rows.
        conn = session.connection()
        compiled = query.compile(dialect=conn.dialect)
        params = compiled.construct_params()
        args: Any = [params[k] for k in compiled.positiontup or ()] if compiled.positional else params
        cursor = conn.connection.cursor()
        try:
            cursor.execute(str(compiled), args)
            rows = cursor.fetchall()
        finally:
            cursor.close()
    nan = float("nan")
    return (
        [r[0] for r in rows],
        [r[1] for r in rows],
        [nan if r[3] else float(r[2]) for r in rows],
    )
