"""Endpoints the web UI needs beyond MLflow's API (mounted under ``/api/flowml``).

``GET /metrics/history-downsampled``: a metric's whole history reduced on the server to at most
``max_points`` points (LTTB, keeping first/last and the global min/max), so a 100k-point curve
costs the browser ~1,000 points.

``GET /runs/artifacts/file?run_id=&path=``: one file of a run (the UI's previews and downloads).

``GET /runs/artifacts/zip?run_id=&path=``: a run's artifact folder (the whole run by default) as a
streamed zip attachment (:mod:`flowml.artifacts.zipstream`: memory stays at about one chunk). The
path goes through the same checks as every artifact path, and the server only reads runs whose
artifacts live in *its* artifact store (the proxy, or under ``--artifacts-destination``): an
experiment's ``artifact_location`` is chosen by whoever creates it, so following it elsewhere would
turn the server into a reader of any file or bucket it can reach.
"""

from __future__ import annotations

import posixpath
from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from flowml.artifacts import (
    ArtifactRepository,
    normalize_artifact_path,
)
from flowml.artifacts.zipstream import archive_name, zip_chunks
from flowml.client.local import SqlBackend
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.server.deps import ArtifactsDep, BackendDep
from flowml.server.routes.artifacts import attachment_headers, run_path_in_store
from flowml.server.wire import fast_json
from flowml.ui.downsample import downsample

__all__ = ["MAX_ZIP_FILES", "router"]

router = APIRouter(tags=["ui"])

#: Most files one zip download may hold (the file list is built before the first byte is sent).
MAX_ZIP_FILES = 100_000


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

    backend.get_run_info(run_id)  # RESOURCE_DOES_NOT_EXIST for an unknown run
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


def _in_store(backend: SqlBackend, artifacts: ArtifactRepository, run_id: str, rel: str) -> tuple[str, str]:
    """The run's artifact root in the server's store, and its (already normalised) ``rel`` there."""
    return run_path_in_store(backend.get_run_info(run_id).artifact_uri, artifacts, rel)


@router.get("/runs/artifacts/file")
def run_artifact_file(
    backend: BackendDep,
    artifacts: ArtifactsDep,
    run_id: str = Query(min_length=1),
    path: str = Query(min_length=1),
) -> StreamingResponse:
    """One artifact file of a run, streamed as an attachment (previews and downloads in the UI, whether
    or not the server proxies artifacts)."""
    _, full = _in_store(backend, artifacts, run_id, normalize_artifact_path(path, allow_root=False))
    try:
        stream = artifacts.open_stream(full)
    except ResourceDoesNotExist:  # said without the server's own storage location
        raise ResourceDoesNotExist(f"Run {run_id} has no artifact file {path!r}") from None
    headers = attachment_headers(posixpath.basename(full))
    return StreamingResponse(stream, media_type="application/octet-stream", headers=headers)


@router.get("/runs/artifacts/zip")
def run_artifacts_zip(
    backend: BackendDep,
    artifacts: ArtifactsDep,
    run_id: str = Query(min_length=1),
    path: str | None = None,
) -> StreamingResponse:
    folder = normalize_artifact_path(path)
    base, full = _in_store(backend, artifacts, run_id, folder)
    try:
        _, files = artifacts.walk_files(full)  # everything is checked before the first byte is sent
    except ResourceDoesNotExist:  # said without the server's own storage location
        what = f"artifact {folder!r}" if folder else "artifacts"
        raise ResourceDoesNotExist(f"Run {run_id} has no {what}") from None
    if len(files) > MAX_ZIP_FILES:
        raise InvalidParameterValue(
            f"{repr(folder) if folder else 'The run'} holds {len(files):,} files, more than "
            f"{MAX_ZIP_FILES:,} for one zip: download a subfolder, or use the client."
        )
    entries = [(f, archive_name(folder, f[len(base) + 1 :] if base else f)) for f in files]
    name = posixpath.basename(folder) if folder else f"{run_id}-artifacts"
    headers = attachment_headers(name + ".zip")
    return StreamingResponse(zip_chunks(artifacts, entries), media_type="application/zip", headers=headers)
