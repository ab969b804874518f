"""The server's log-batch writes on PostgreSQL: groups of metric points sent from the event loop on
its own asyncio connection in one exchange (``store/_pg_loop.py``), everything else (and any group
the loop could not write) by the background leader. The outcome must be what the thread path gives."""

from __future__ import annotations

import asyncio
import gc
import random
import threading
import time
import warnings
from collections.abc import Iterator

import psycopg
import pytest

from flowml.client.local import SqlBackend
from flowml.entities import Metric, Param
from flowml.exceptions import FlowmlError
from flowml.store.run_data import prepare_batch

pytestmark = pytest.mark.postgres


@pytest.fixture
def backend(postgres_uri: str, artifact_root: str) -> Iterator[SqlBackend]:
    b = SqlBackend(postgres_uri, artifact_root)
    yield b
    b.close()


def _points(key: str, n: int, first_step: int = 0) -> list[Metric]:
    return [Metric(key, random.uniform(-1e6, 1e6), 1_700_000_000_000 + s, first_step + s) for s in range(n)]


def _ordered(points: list[Metric]) -> list[Metric]:
    return sorted(points, key=lambda m: (m.step, m.timestamp, m.value))


def _recording_leader(backend: SqlBackend) -> list[tuple[int, int]]:
    """(thread, group size) of every group the background leader's path writes."""
    calls: list[tuple[int, int]] = []
    write_group = backend._batches._write_group

    def recording(session, payloads):  # type: ignore[no-untyped-def]
        calls.append((threading.get_ident(), len(payloads)))
        return write_group(session, payloads)

    backend._batches._write_group = recording
    return calls


def test_metric_groups_are_written_from_the_event_loop_and_refused_per_batch(backend: SqlBackend) -> None:
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    gone = backend.create_run("0", "u", None, {}, None).info.run_id
    backend.delete_run(gone)
    leader = _recording_leader(backend)
    sent = {i: _points(f"m{i}", 100) for i in range(8)}
    sent[7] = [*sent[7], Metric("m7", 1.0, 5, 3)] * 2 + [Metric("m7", float("inf"), 6, 3)]  # repeats, ties

    async def main() -> tuple[list[BaseException | None], bool]:
        batches = [prepare_batch(run_id, sent[i]) for i in range(8)]
        batches[3] = prepare_batch(gone, sent[3])
        batches[5] = prepare_batch(run_id, sent[5], [Param("p", "v")])  # not points only: the leader's
        results = await asyncio.gather(
            *(backend.log_prepared_batch(b) for b in batches), return_exceptions=True
        )
        connected = backend._loop_points is not None and backend._loop_points.connections > 0
        await backend.aclose()
        return results, connected

    results, connected = asyncio.run(main())
    assert connected
    assert [size for _, size in leader] == [1]  # only the batch with a param went to the leader
    assert isinstance(results[3], FlowmlError) and results[3].error_code == "INVALID_PARAMETER_VALUE"
    assert [i for i, r in enumerate(results) if r is None] == [0, 1, 2, 4, 5, 6, 7]
    for i in (0, 1, 2, 4, 5, 6):
        assert backend.get_metric_history(run_id, f"m{i}", None, None) == sent[i]
    assert _ordered(backend.get_metric_history(run_id, "m7", None, None)) == _ordered(list(set(sent[7])))
    run = backend.get_run(run_id)
    assert run.data.params == {"p": "v"}
    metrics = run.data.metrics
    assert set(metrics) == {f"m{i}" for i in (0, 1, 2, 4, 5, 6, 7)}
    assert metrics["m0"] == sent[0][-1].value  # latest_metrics: the newest step
    assert metrics["m7"] == sent[7][99].value  # step 99 beats the later-timestamped step 3 points
    assert backend.get_metric_history(gone, "m3", None, None) == []
    assert backend._loop_points is not None and backend._loop_points.connections == 0  # closed


def test_a_retried_batch_goes_to_the_leader_and_is_stored_once(backend: SqlBackend) -> None:
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    leader = _recording_leader(backend)
    first = _points("m", 50)
    retry = [*first, Metric("m", 2.5, 1, 50)]  # the same points again, and one new
    later = _points("m", 5, first_step=100)

    async def main() -> None:
        await backend.log_prepared_batch(prepare_batch(run_id, first))
        assert leader == []  # written from the loop
        await backend.log_prepared_batch(prepare_batch(run_id, retry))
        await backend.log_prepared_batch(prepare_batch(run_id, later))  # the same connection, reused
        assert backend._loop_points is not None and backend._loop_points.connections == 1
        await backend.aclose()

    asyncio.run(main())
    assert [size for _, size in leader] == [1]  # the plain INSERT refused the stored points
    assert _ordered(backend.get_metric_history(run_id, "m", None, None)) == _ordered([*retry, *later])
    assert backend.get_run(run_id).data.metrics["m"] == later[-1].value


def test_statements_skipped_by_a_failed_first_exchange_are_prepared_again(backend: SqlBackend) -> None:
    """A new loop connection prepares each statement in its first exchange; when the points' INSERT
    fails there (a stored point), the statements after it are skipped, their prepares too."""
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    stored = _points("m", 10)
    backend.log_batch(run_id, stored, [], [])  # not through the loop: its connection is opened below
    leader = _recording_leader(backend)
    later = _points("m", 10, first_step=10)

    async def main() -> None:
        await backend.log_prepared_batch(prepare_batch(run_id, stored))  # refused: the leader's
        await backend.log_prepared_batch(prepare_batch(run_id, later))  # same connection
        assert backend._loop_points is not None and backend._loop_points.connections == 1
        await backend.aclose()

    asyncio.run(main())
    assert [size for _, size in leader] == [1]  # the second group was written from the loop
    assert _ordered(backend.get_metric_history(run_id, "m", None, None)) == _ordered([*stored, *later])
    assert backend.get_run(run_id).data.metrics["m"] == later[-1].value


def test_a_lost_loop_connection_hands_the_group_to_the_leader_and_reconnects(
    backend: SqlBackend, postgres_uri: str
) -> None:
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    leader = _recording_leader(backend)
    sent = [_points("m", 20, first_step=20 * i) for i in range(3)]
    conninfo = postgres_uri.replace("postgresql+psycopg://", "postgresql://")

    async def main() -> tuple[int, int]:
        writer = backend._loop_points
        assert writer is not None
        await backend.log_prepared_batch(prepare_batch(run_id, sent[0]))
        first_pid = writer._idle[0].connection.info.backend_pid
        with psycopg.connect(conninfo, autocommit=True) as admin:  # the server drops the connection
            admin.execute("SELECT pg_terminate_backend(%s)", (first_pid,))
        await backend.log_prepared_batch(prepare_batch(run_id, sent[1]))  # lost: the leader writes it
        await backend.log_prepared_batch(prepare_batch(run_id, sent[2]))  # a new loop connection
        second_pid = writer._idle[0].connection.info.backend_pid
        await backend.aclose()
        return first_pid, second_pid

    first_pid, second_pid = asyncio.run(main())
    assert first_pid != second_pid
    assert [size for _, size in leader] == [1]
    stored = _ordered(backend.get_metric_history(run_id, "m", None, None))
    assert stored == _ordered([p for batch in sent for p in batch])


def test_connections_of_an_ended_event_loop_are_closed(backend: SqlBackend, postgres_uri: str) -> None:
    """Each ``asyncio.run`` is a new event loop: the writer opens connections for it and closes the
    previous loop's, which that loop can no longer close itself (dropping one would leave it to the
    garbage collector, with psycopg's "deleted while still open" warning)."""
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    conninfo = postgres_uri.replace("postgresql+psycopg://", "postgresql://")
    sent: list[Metric] = []

    async def write(first_step: int) -> int:
        sent.extend(_points("m", 5, first_step))
        await backend.log_prepared_batch(prepare_batch(run_id, sent[-5:]))
        assert backend._loop_points is not None
        return int(backend._loop_points._idle[0].connection.info.backend_pid)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        first = asyncio.run(write(0))
        second = asyncio.run(write(10))  # the first loop ended without closing its connection
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]  # closed, not dropped

    def backends() -> set[int]:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            return {pid for (pid,) in admin.execute("SELECT pid FROM pg_stat_activity").fetchall()}

    deadline = time.monotonic() + 10
    while first in backends() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first != second
    assert first not in backends() and second in backends()
    asyncio.run(backend.aclose())  # from a third loop: the second's connection is closed too
    deadline = time.monotonic() + 10
    while second in backends() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert second not in backends()
    assert _ordered(backend.get_metric_history(run_id, "m", None, None)) == _ordered(sent)


def test_a_second_group_goes_out_while_the_first_is_written_once_it_is_big_enough(
    backend: SqlBackend,
) -> None:
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    leader = _recording_leader(backend)
    writer = backend._loop_points
    assert writer is not None
    write = writer.write
    entered: list[int] = []  # each group's size, as it goes out

    async def held(run_ids, rows, latest_rows, **kwargs):  # type: ignore[no-untyped-def]
        entered.append(len(rows) // 10)
        if len(entered) == 1:  # the first group waits (10 s at most) until the second is out too
            await asyncio.wait_for(_until(lambda: len(entered) == 2), 10)
        return await write(run_ids, rows, latest_rows, **kwargs)

    async def _until(condition) -> None:  # type: ignore[no-untyped-def]
        while not condition():
            await asyncio.sleep(0.001)

    writer.write = held  # type: ignore[method-assign]
    sent = {key: _points(key, 10) for key in "abcd"}
    overlap_min = backend._batches._loop_overlap_min
    assert overlap_min == 3

    async def main() -> None:
        log = backend.log_prepared_batch
        first = asyncio.create_task(log(prepare_batch(run_id, sent["a"])))
        await _until(lambda: len(entered) == 1)
        lone = asyncio.create_task(log(prepare_batch(run_id, sent["b"])))
        await asyncio.sleep(0.05)  # many loop passes: a lone batch does not go out beside the first
        assert entered == [1]
        rest = [asyncio.create_task(log(prepare_batch(run_id, sent[k]))) for k in "cd"]
        await asyncio.gather(first, lone, *rest)  # three waiting: the second group goes out
        await backend.aclose()

    asyncio.run(main())
    assert entered == [1, 3] and leader == []  # both written from the loop, the second not held up
    for key, points in sent.items():
        assert _ordered(backend.get_metric_history(run_id, key, None, None)) == _ordered(points)


def test_concurrent_clients_keep_every_point_and_the_newest(backend: SqlBackend) -> None:
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    leader = _recording_leader(backend)
    sent: dict[str, list[Metric]] = {f"k{k}": [] for k in range(5)}

    async def client(c: int) -> None:
        for j in range(15):
            await asyncio.sleep(random.uniform(0, 0.003))  # arrivals spread like a server's requests
            points = [
                Metric(f"k{k}", float(c * 1000 + j), 1_700_000_000_000 + j, 100 * j + c) for k in range(5)
            ]
            for p in points:
                sent[p.key].append(p)
            await backend.log_prepared_batch(prepare_batch(run_id, points))

    async def main() -> None:
        await asyncio.gather(*(client(c) for c in range(8)))
        await backend.aclose()

    asyncio.run(main())
    assert leader == []
    for key, points in sent.items():
        assert _ordered(backend.get_metric_history(run_id, key, None, None)) == _ordered(points)
    newest = max(sent["k0"], key=lambda m: (m.step, m.timestamp, m.value))
    assert backend.get_run(run_id).data.metrics == {key: newest.value for key in sent}


class _SilentPGconn:
    """libpq after a connection broke without a word: never busy, no results, status BAD."""

    nonblocking = 0
    socket = -1
    error_message = b""

    def __init__(self, status: int) -> None:
        self.status = status

    def enter_pipeline_mode(self) -> None:
        pass

    def is_busy(self) -> bool:
        return False

    def get_result(self) -> None:
        return None


@pytest.mark.parametrize("status", ["BAD", "OK"])
def test_reading_results_stops_when_libpq_has_nothing_more(status: str) -> None:
    """A broken connection (or libpq giving nothing but ends of results) raises instead of spinning
    on the event loop, where no timeout could interrupt it. The fault is made up: a real lost
    connection makes ``consume_input`` raise first (the lost-connection test)."""
    from psycopg.pq import ConnStatus

    from flowml.store._pg_loop import _Channel

    class Connection:
        pgconn = _SilentPGconn(ConnStatus[status])

    outcome: list[BaseException] = []

    def read() -> None:
        async def main() -> None:
            channel = _Channel(Connection(), asyncio.get_running_loop())
            await channel._results()

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "the result loop spun"
    assert len(outcome) == 1 and isinstance(outcome[0], psycopg.OperationalError)
