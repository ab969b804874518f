"""Params, metrics and batches: MLflow's semantics and limits."""

from __future__ import annotations

import math

import pytest

from flowml.entities import Metric, Param, RunTag
from flowml.exceptions import FlowmlError


@pytest.fixture
def run_id(client) -> str:
    return client.create_run("0").info.run_id


def _error_code(fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(FlowmlError) as err:
        fn(*args, **kwargs)
    return err.value.error_code


def test_params_are_immutable(client, run_id: str) -> None:
    assert client.log_param(run_id, "lr", 0.1) == 0.1
    client.log_param(run_id, "lr", "0.1")  # the same value again is fine
    assert _error_code(client.log_param, run_id, "lr", 0.2) == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run_id).data.params == {"lr": "0.1"}


def test_batch_with_conflicting_duplicate_params_writes_nothing(client, run_id: str) -> None:
    code = _error_code(
        client.log_batch,
        run_id,
        metrics=[Metric("m", 1.0, 1, 0)],
        params=[Param("a", "1"), Param("a", "2")],
    )
    assert code == "INVALID_PARAMETER_VALUE"
    data = client.get_run(run_id).data
    assert data.params == {} and data.metrics == {}


def test_metric_history_keeps_every_point_and_latest_follows_step_then_time_then_value(
    client, run_id: str
) -> None:
    client.log_metric(run_id, "acc", 0.5, timestamp=1000, step=0)
    client.log_metric(run_id, "acc", 0.9, timestamp=900, step=1)  # higher step wins over time
    client.log_metric(run_id, "acc", 0.7, timestamp=800, step=1)
    client.log_metric(run_id, "acc", 0.1, timestamp=900, step=0)
    assert client.get_run(run_id).data.metrics["acc"] == 0.9
    history = client.get_metric_history(run_id, "acc")
    assert [(m.value, m.timestamp, m.step) for m in history] == [
        (0.7, 800, 1),
        (0.1, 900, 0),
        (0.9, 900, 1),
        (0.5, 1000, 0),
    ]
    client.log_metric(run_id, "acc", 0.95, timestamp=900, step=1)  # same step+time, higher value
    assert client.get_run(run_id).data.metrics["acc"] == 0.95
    client.log_metric(run_id, "acc", 0.2, timestamp=950, step=1)  # later time at the top step
    assert client.get_run(run_id).data.metrics["acc"] == 0.2


def test_identical_point_is_stored_once(client, run_id: str) -> None:
    for _ in range(3):
        client.log_metric(run_id, "m", 1.5, timestamp=10, step=2)
    assert len(client.get_metric_history(run_id, "m")) == 1


def test_nan_and_infinities_round_trip(client, run_id: str) -> None:
    client.log_batch(
        run_id,
        metrics=[
            Metric("nan", float("nan"), 1, 0),
            Metric("pinf", float("inf"), 1, 0),
            Metric("ninf", float("-inf"), 1, 0),
        ],
    )
    metrics = client.get_run(run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["pinf"] == float("inf") and metrics["ninf"] == float("-inf")
    assert math.isnan(client.get_metric_history(run_id, "nan")[0].value)


def test_large_history_is_paged_completely(client, run_id: str) -> None:
    for start in range(0, 30_000, 1000):
        client.log_batch(run_id, metrics=[Metric("loss", float(i), i, i) for i in range(start, start + 1000)])
    history = client.get_metric_history(run_id, "loss")
    assert len(history) == 30_000
    assert [m.step for m in history[:3]] == [0, 1, 2] and history[-1].step == 29_999


def test_batch_writes_all_three_kinds(client, run_id: str) -> None:
    client.log_batch(
        run_id,
        metrics=[Metric(f"m{i}", float(i), 5, i) for i in range(10)],
        params=[Param(f"p{i}", str(i)) for i in range(5)],
        tags=[RunTag("team", "a"), RunTag("mlflow.runName", "batched")],
    )
    run = client.get_run(run_id)
    assert len(run.data.metrics) == 10 and run.data.params["p4"] == "4"
    assert run.data.tags["team"] == "a" and run.info.run_name == "batched"


@pytest.mark.parametrize(
    ("metrics", "params", "tags"),
    [(1001, 0, 0), (0, 101, 0), (0, 0, 101), (950, 30, 30)],
)
def test_batch_limits(client, run_id: str, metrics: int, params: int, tags: int) -> None:
    code = _error_code(
        client.log_batch,
        run_id,
        metrics=[Metric(f"m{i}", 1.0, 1, 0) for i in range(metrics)],
        params=[Param(f"p{i}", "v") for i in range(params)],
        tags=[RunTag(f"t{i}", "v") for i in range(tags)],
    )
    assert code == "INVALID_PARAMETER_VALUE"
    assert client.get_run(run_id).data.metrics == {}


def test_batch_at_the_limits_is_accepted(client, run_id: str) -> None:
    client.log_batch(run_id, metrics=[Metric(f"m{i}", 1.0, 1, 0) for i in range(1000)])
    client.log_batch(run_id, params=[Param(f"p{i}", "v") for i in range(100)], tags=[RunTag("t", "v")])
    assert len(client.get_run(run_id).data.metrics) == 1000


@pytest.mark.parametrize(
    "key",
    ["", "k" * 251, "bad*key", "../escape", "/abs", "a//b", "trailing/", ".", "a/../b", "semi;colon"],
)
def test_invalid_keys_are_rejected_everywhere(client, run_id: str, key: str) -> None:
    assert _error_code(client.log_param, run_id, key, "v") == "INVALID_PARAMETER_VALUE"
    assert _error_code(client.log_metric, run_id, key, 1.0) == "INVALID_PARAMETER_VALUE"
    assert _error_code(client.set_tag, run_id, key, "v") == "INVALID_PARAMETER_VALUE"


def test_valid_unusual_keys_are_accepted(client, run_id: str) -> None:
    for key in ["with space", "a/b/c", "colon:ok", "dash-dot.under_score", "k" * 250]:
        client.log_param(run_id, key, "v")
    assert len(client.get_run(run_id).data.params) == 5


def test_value_length_limits(client, run_id: str) -> None:
    client.log_param(run_id, "p6000", "x" * 6000)
    assert _error_code(client.log_param, run_id, "p6001", "x" * 6001) == "INVALID_PARAMETER_VALUE"
    client.set_tag(run_id, "t8000", "x" * 8000)
    assert _error_code(client.set_tag, run_id, "t8001", "x" * 8001) == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("value", ["1.0", None, True, [1]])
def test_non_numeric_metric_values_are_rejected(client, run_id: str, value: object) -> None:
    assert _error_code(client.log_metric, run_id, "m", value) == "INVALID_PARAMETER_VALUE"


def test_negative_timestamp_is_rejected(client, run_id: str) -> None:
    assert _error_code(client.log_metric, run_id, "m", 1.0, timestamp=-1) == "INVALID_PARAMETER_VALUE"


def test_latest_metric_point_keeps_its_step_and_timestamp(client, run_id: str) -> None:
    client.log_metric(run_id, "loss", 0.9, timestamp=1000, step=0)
    client.log_metric(run_id, "loss", 0.1, timestamp=2000, step=99_999)
    point = client.get_run(run_id).data.latest_metrics["loss"]
    assert (point.value, point.timestamp, point.step) == (0.1, 2000, 99_999)
