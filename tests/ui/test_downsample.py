"""LTTB downsampling (``flowml.ui.downsample``) and the endpoint that serves it."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import httpx
import pytest

from flowml.ui.downsample import downsample, lttb
from tests.ui.conftest import serve_ui


def test_small_series_are_returned_exactly() -> None:
    xs, ys = list(range(10)), [float(v * v) for v in range(10)]
    assert lttb(xs, ys, 10) == list(range(10))
    assert lttb(xs, ys, 1000) == list(range(10))
    assert lttb([], [], 5) == []
    steps, times, values, dropped = downsample(xs, [x * 10 for x in xs], ys, 100)
    assert (steps, values, dropped) == (xs, ys, 0)
    assert times == [x * 10 for x in xs]


@pytest.mark.parametrize("max_points", [4, 10, 100, 1000])
def test_keeps_first_last_and_global_extremes_within_budget(max_points: int) -> None:
    rng = random.Random(max_points)
    n = 20_000
    xs = list(range(n))
    ys = [math.sin(i / 300) + rng.gauss(0, 0.1) for i in xs]
    ys[7_777], ys[12_345] = 50.0, -50.0  # single-point spikes LTTB alone could drop
    keep = lttb(xs, ys, max_points)
    assert len(keep) <= max_points
    assert keep == sorted(set(keep))
    assert keep[0] == 0 and keep[-1] == n - 1
    assert 7_777 in keep and 12_345 in keep


def test_tiny_budgets_keep_the_ends() -> None:
    ys = [float(i % 7) for i in range(100)]
    for budget in (1, 2, 3):
        keep = lttb(list(range(100)), ys, budget)
        assert 1 <= len(keep) <= budget and keep[0] == 0
        assert budget == 1 or keep[-1] == 99


def test_shape_is_preserved() -> None:
    xs = list(range(10_000))
    ys = [float(i % 1000) for i in xs]  # sawtooth: every tooth's top must survive
    keep = lttb(xs, ys, 200)
    for tooth in range(10):
        assert max(ys[i] for i in keep if tooth * 1000 <= i < (tooth + 1) * 1000) >= 950


def test_non_finite_values_are_left_out_and_counted() -> None:
    values = [1.0, float("nan"), 2.0, float("inf"), 3.0]
    steps, _, kept, dropped = downsample(range(5), range(5), values, 10)  # type: ignore[arg-type]
    assert (steps, kept, dropped) == ([0, 2, 4], [1.0, 2.0, 3.0], 2)


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="same length"):
        lttb([1, 2], [1.0], 5)
    with pytest.raises(ValueError, match="positive"):
        lttb([1, 2], [1.0, 2.0], 0)


def test_endpoint_downsamples_100k_points(tmp_path: Path) -> None:
    from flowml.client import FlowmlClient
    from flowml.entities import Metric

    store = f"sqlite:///{tmp_path / 'ds.db'}"
    local = FlowmlClient(store)
    exp = local.create_experiment("big")
    run = local.create_run(exp).info.run_id
    n = 100_000
    points = [
        Metric("loss", 1.0 / (i + 1) + (5.0 if i == 54_321 else 0.0), 1_700_000_000_000 + i, i)
        for i in range(n)
    ]
    backend = local.backend
    for i in range(0, n, 1000):
        backend.log_batch(run, points[i : i + 1000], [], [])
    with serve_ui(store, str(tmp_path / "art")) as url:
        httpx.get(f"{url}/api/2.0/mlflow/runs/get", params={"run_id": run})  # open the store
        t0 = time.perf_counter()
        r = httpx.get(
            f"{url}/api/flowml/metrics/history-downsampled",
            params={"run_id": run, "key": "loss", "max_points": 1000},
            timeout=30,
        )
        elapsed = time.perf_counter() - t0
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total_points"] == n
        assert len(body["values"]) <= 1000
        assert body["steps"][0] == 0 and body["steps"][-1] == n - 1
        assert 54_321 in body["steps"]  # the spike (global max after step 0) survives
        assert len(body["steps"]) == len(body["timestamps"]) == len(body["values"])
        print(f"100k-point history downsampled to {len(body['values'])} in {elapsed:.3f}s")
        bad = httpx.get(
            f"{url}/api/flowml/metrics/history-downsampled",
            params={"run_id": run, "key": "loss", "max_points": 1},
        )
        assert bad.status_code == 400
        missing = httpx.get(
            f"{url}/api/flowml/metrics/history-downsampled", params={"run_id": "nope", "key": "loss"}
        )
        assert missing.status_code == 404
