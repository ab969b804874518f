"""Concurrent writes sharing a transaction still succeed or fail one by one (threads and asyncio)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy.exc import IntegrityError

from flowml.client import FlowmlClient
from flowml.client.local import SqlBackend
from flowml.entities import Metric, Param
from flowml.exceptions import FlowmlError
from flowml.store.run_data import PreparedBatch, prepare_batch


def test_concurrent_batches_all_land_and_a_bad_one_fails_alone(flowml_env: str) -> None:
    client = FlowmlClient()
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "fixed", "1")
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def writer(i: int) -> None:
        barrier.wait()
        try:
            for b in range(10):
                params = [Param("fixed", "2")] if (i == 7 and b == 5) else [Param(f"p{i}_{b}", str(b))]
                client.log_batch(run_id, metrics=[Metric(f"w{i}", float(b), 1, b)], params=params)
        except FlowmlError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1 and "Changing param values" in str(errors[0])
    run = client.get_run(run_id)
    assert run.data.params["fixed"] == "1"
    # writer 7 stopped at its failing batch; everyone else wrote all 10
    for i in range(16):
        expected = 5 if i == 7 else 10
        assert len(client.get_metric_history(run_id, f"w{i}")) == expected
    assert len(run.data.params) == 1 + 15 * 10 + 5


def test_a_refused_write_in_a_group_leaves_no_partial_rows(flowml_env: str) -> None:
    client = FlowmlClient()
    run_id = client.create_run("0").info.run_id
    client.log_param(run_id, "p", "a")
    with pytest.raises(FlowmlError):
        client.log_batch(run_id, metrics=[Metric("m", 1.0, 1, 0)], params=[Param("p", "b")])
    assert client.get_run(run_id).data.metrics == {}


def _poisoned_batch(run_id: str) -> PreparedBatch:
    """A batch the database itself refuses (a NULL metric key: NOT NULL constraint), built by hand
    because validation would never let one through: stands for any unexpected write failure."""
    return PreparedBatch(run_id, [(run_id, None, 0, 1, 1.0, False)], {}, {}, {})  # type: ignore[list-item]


def test_a_group_whose_transaction_fails_is_retried_one_by_one(flowml_env: str) -> None:
    backend = SqlBackend(flowml_env, "/tmp/unused-artifacts")
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    outcomes: dict[int, BaseException | None] = {}
    barrier = threading.Barrier(12)

    def writer(i: int) -> None:
        batch = _poisoned_batch(run_id) if i == 5 else prepare_batch(run_id, [Metric(f"m{i}", 1.0, 1, 0)])
        barrier.wait()
        try:
            backend._batches.submit(batch)
            outcomes[i] = None
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            outcomes[i] = exc

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(outcomes.pop(5), IntegrityError)
    assert outcomes == {i: None for i in range(12) if i != 5}
    assert set(backend.get_run(run_id).data.metrics) == {f"m{i}" for i in range(12) if i != 5}
    backend.close()


def test_async_submitters_share_transactions_and_fail_alone(flowml_env: str) -> None:
    backend = SqlBackend(flowml_env, "/tmp/unused-artifacts")
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    gone = backend.create_run("0", "u", None, {}, None).info.run_id
    backend.delete_run(gone)
    commits = 0
    write_group = backend._batches._write_group

    def counting(session, payloads):  # type: ignore[no-untyped-def]
        nonlocal commits
        commits += 1
        return write_group(session, payloads)

    backend._batches._write_group = counting

    async def main() -> list[BaseException | None]:
        def batch(i: int) -> PreparedBatch:
            points = [Metric("m", float(s), 10 + s, i * 100 + s) for s in range(100)]
            points += [Metric("same", 1.0, 5, 0)] * 2  # the same point twice, in every batch
            return prepare_batch(gone if i == 3 else run_id, points, [Param(f"p{i}", "v")])

        return await asyncio.gather(
            *(backend.log_prepared_batch(batch(i)) for i in range(40)), return_exceptions=True
        )

    results = asyncio.run(main())
    assert isinstance(results[3], FlowmlError) and results[3].error_code == "INVALID_PARAMETER_VALUE"
    assert all(r is None for i, r in enumerate(results) if i != 3)
    assert commits < 40  # queued requests went in together
    assert len(backend.get_metric_history(run_id, "m", None, None)) == 39 * 100
    assert backend.get_metric_history(run_id, "same", None, None) == [Metric("same", 1.0, 5, 0)]
    assert len(backend.get_run(run_id).data.params) == 39
    backend.close()


def test_a_retried_batch_is_stored_once_infinities_included(flowml_env: str) -> None:
    """A client retrying a batch re-sends points that are stored already (on PostgreSQL the bulk
    COPY refuses them and the rows go in with ON CONFLICT DO NOTHING instead)."""
    backend = SqlBackend(flowml_env, "/tmp/unused-artifacts")
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    points = [Metric("m", v, 1, s) for s, v in enumerate([1.5, float("inf"), float("-inf"), float("nan")])]
    backend.log_batch(run_id, points, [], [])
    backend.log_batch(run_id, [*points, Metric("m", 2.5, 1, 4)], [], [])  # the retry, plus a new point
    history = backend.get_metric_history(run_id, "m", None, None)
    assert [p.step for p in history] == [0, 1, 2, 3, 4]
    values = [p.value for p in history]
    assert values[:3] == [1.5, float("inf"), float("-inf")] and values[3] != values[3] and values[4] == 2.5
    backend.close()
