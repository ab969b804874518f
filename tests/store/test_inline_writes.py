"""The server's log-batch writes on SQLite: groups written on the event loop itself, never waiting
for SQLite's write lock there (``GroupCommit`` inline mode, ``Database.write_nowait``), and the
multi-row statements they use (``store/_sqlite_batch.py``)."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from flowml.client.local import INLINE_MAX_ROWS, SqlBackend
from flowml.entities import Metric, Param
from flowml.exceptions import FlowmlError
from flowml.store import run_data
from flowml.store._sqlite_batch import CHUNK
from flowml.store.db import WriteBusy
from flowml.store.run_data import PreparedBatch, prepare_batch


@pytest.fixture
def backend(tmp_path: Path) -> SqlBackend:
    return SqlBackend(f"sqlite:///{tmp_path / 'store.db'}", str(tmp_path / "artifacts"))


def _points(key: str, n: int, first_step: int = 0) -> list[Metric]:
    return [Metric(key, random.uniform(-1e6, 1e6), 1_700_000_000_000 + s, first_step + s) for s in range(n)]


def test_small_groups_are_written_on_the_event_loop_and_fail_one_by_one(backend: SqlBackend) -> None:
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    gone = backend.create_run("0", "u", None, {}, None).info.run_id
    backend.delete_run(gone)
    backend.log_batch(run_id, [], [Param("fixed", "1")], [])
    loop_thread: list[int] = []
    write_group = backend._batches._write_group

    def recording(session, payloads):  # type: ignore[no-untyped-def]
        loop_thread.append(threading.get_ident())
        return write_group(session, payloads)

    backend._batches._write_group = recording
    sent = {i: _points(f"m{i}", 100) for i in range(8)}

    async def main() -> tuple[int, list[BaseException | None]]:
        batches = [prepare_batch(run_id, sent[i]) for i in range(8)]
        batches[3] = prepare_batch(gone, sent[3])
        batches[5] = prepare_batch(run_id, sent[5], [Param("fixed", "2")])
        results = await asyncio.gather(
            *(backend.log_prepared_batch(b) for b in batches), return_exceptions=True
        )
        return threading.get_ident(), results

    loop_id, results = asyncio.run(main())
    assert loop_thread == [loop_id]  # one transaction, on the event loop's own thread
    assert backend._batches._executor is None  # no background leader was needed
    assert isinstance(results[3], FlowmlError) and results[3].error_code == "INVALID_PARAMETER_VALUE"
    assert isinstance(results[5], FlowmlError) and "Changing param values" in str(results[5])
    assert [i for i, r in enumerate(results) if r is None] == [0, 1, 2, 4, 6, 7]
    for i in (0, 1, 2, 4, 6, 7):
        assert backend.get_metric_history(run_id, f"m{i}", None, None) == sent[i]
    metrics = backend.get_run(run_id).data.metrics
    assert set(metrics) == {"m0", "m1", "m2", "m4", "m6", "m7"}
    assert metrics["m0"] == sent[0][-1].value  # latest_metrics: the newest step
    backend.close()


def _recording_sizes(backend: SqlBackend) -> list[int]:
    sizes: list[int] = []
    write_group = backend._batches._write_group

    def recording(session, payloads):  # type: ignore[no-untyped-def]
        sizes.append(len(payloads))
        return write_group(session, payloads)

    backend._batches._write_group = recording
    return sizes


async def _after_passes(passes: int, work):  # type: ignore[no-untyped-def]
    for _ in range(passes):
        await asyncio.sleep(0)  # one pass of the event loop each
    return await work


def test_a_small_group_waits_one_more_pass_for_the_requests_read_next(backend: SqlBackend) -> None:
    """Each group pays a commit: fewer than ``inline_gather`` (4) batches wait one pass, once."""
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    sizes = _recording_sizes(backend)
    sent = {i: _points(f"m{i}", 10) for i in range(10)}
    log = backend.log_prepared_batch

    async def main() -> None:
        # one batch, another a pass later (in time for the first's extra pass), a third a pass
        # after that (too late: it starts the next group)
        await asyncio.gather(*(_after_passes(i, log(prepare_batch(run_id, sent[i]))) for i in range(3)))
        # four at once go right after their pass; a fifth a pass later is not waited for
        await asyncio.gather(
            *(log(prepare_batch(run_id, sent[i])) for i in range(3, 7)),
            _after_passes(1, log(prepare_batch(run_id, sent[7]))),
        )
        # and the next small group waits again
        await asyncio.gather(*(_after_passes(i - 8, log(prepare_batch(run_id, sent[i]))) for i in (8, 9)))

    asyncio.run(main())
    assert sizes == [2, 1, 4, 1, 2]
    for i, points in sent.items():
        assert backend.get_metric_history(run_id, f"m{i}", None, None) == points
    backend.close()


def test_a_heavy_group_is_left_to_the_background_leader(backend: SqlBackend) -> None:
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    n = INLINE_MAX_ROWS // 1000 + 2
    sent = {i: _points(f"m{i}", 1000) for i in range(n)}

    async def main() -> list[None]:
        return await asyncio.gather(
            *(backend.log_prepared_batch(prepare_batch(run_id, sent[i])) for i in range(n))
        )

    asyncio.run(main())
    assert backend._batches._executor is not None  # the loop did not write ~n thousand rows itself
    for i in range(n):
        assert backend.get_metric_history(run_id, f"m{i}", None, None) == sent[i]
    backend.close()


def test_a_locked_database_never_stalls_the_event_loop(backend: SqlBackend, tmp_path: Path) -> None:
    """Another process's writer holds SQLite's write lock for 0.6 s: the batch waits for it off the
    loop (background leader), and the loop keeps ticking meanwhile."""
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    other = sqlite3.connect(tmp_path / "store.db", isolation_level=None, check_same_thread=False)
    sent = _points("m", 50)

    async def main() -> tuple[float, float]:
        other.execute("BEGIN IMMEDIATE")
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        async def release() -> None:
            await asyncio.sleep(0.6)
            other.execute("COMMIT")

        async def write() -> float:
            start = time.perf_counter()
            await backend.log_prepared_batch(prepare_batch(run_id, sent))
            done.set()
            return time.perf_counter() - start

        took, _, _ = await asyncio.gather(write(), ticker(), release())
        return took, max(gaps)

    took, worst_gap = asyncio.run(main())
    other.close()
    assert took >= 0.5  # it really waited for the other writer...
    assert worst_gap < 0.3  # ...without blocking the loop (a blocked loop shows a ~0.6 s gap)
    assert backend.get_metric_history(run_id, "m", None, None) == sent
    backend.close()


def test_write_nowait_refuses_at_once_and_keeps_the_busy_timeout(backend: SqlBackend, tmp_path: Path) -> None:
    db = backend.db
    assert db.can_write_nowait
    _ = db.engine  # the store exists (in WAL mode) before another connection writes
    other = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    start = time.perf_counter()
    with pytest.raises(WriteBusy):
        db.write_nowait(lambda s: s.connection().exec_driver_sql("SELECT 1").scalar())
    assert time.perf_counter() - start < 1  # not SQLite's 30 s busy wait
    other.execute("COMMIT")
    timeout = db.write_nowait(lambda s: s.connection().exec_driver_sql("PRAGMA busy_timeout").scalar())
    assert timeout == 30_000  # the connection went back to the pool with its busy timeout
    other.close()
    lock = db._write_lock
    assert lock is not None
    with lock, pytest.raises(WriteBusy):  # a writer thread of this process holds it
        db.write_nowait(lambda s: None)
    assert not SqlBackend("sqlite:///:memory:", str(tmp_path / "a")).db.can_write_nowait
    backend.close()


def test_multi_row_statements_store_every_point_exactly(backend: SqlBackend) -> None:
    """Groups larger than one statement's chunk, a last chunk padded with repeats of its final row,
    points repeated within and across batches, special values, and the newest point per key."""
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    batches: list[PreparedBatch] = []
    stored: dict[str, list[Metric]] = {}
    for i in range(6):  # 6 x 999 rows: one full chunk, then one padded up to a multiple of 16
        points = _points(f"k{i % 3}", 999, first_step=i * 1000)
        stored.setdefault(f"k{i % 3}", []).extend(points[:-1])
        batches.append(prepare_batch(run_id, [*points[:-1], points[0]]))  # a repeat inside the batch
    assert sum(len(b.metric_rows) for b in batches) > CHUNK
    special = [Metric("s", v, 7, 3) for v in (float("inf"), float("-inf"), float("nan"), 5e-324)]
    batches.append(prepare_batch(run_id, special))
    batches.append(prepare_batch(run_id, special[:2]))  # the same points again: kept once
    assert backend.db.write(lambda s: run_data.write_batches(s, batches)) == [None] * len(batches)
    for key, points in stored.items():
        assert backend.get_metric_history(run_id, key, None, None) == sorted(
            points, key=lambda m: (m.timestamp, m.step, m.value)
        )
    got = backend.get_metric_history(run_id, "s", None, None)
    assert sorted(map(repr, (m.value for m in got))) == sorted(map(repr, (m.value for m in special)))
    latest = backend.get_run(run_id).data.metrics
    assert latest["k1"] == stored["k1"][-1].value and latest["k2"] == stored["k2"][-1].value
    assert latest["s"] == float("inf")  # MLflow's rule at equal step and time: the greatest value
    backend.close()
