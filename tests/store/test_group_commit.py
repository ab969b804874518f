"""Concurrent writes sharing a transaction still succeed or fail one by one."""

from __future__ import annotations

import threading

import pytest

from flowml.client import FlowmlClient
from flowml.entities import Metric, Param
from flowml.exceptions import FlowmlError


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
