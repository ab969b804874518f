"""/invocations micro-batching in real `flowml models serve` processes under concurrent clients.

Every answer is compared with :func:`flowml.serving.invoke` on a locally loaded copy of the model (the
unbatched path) byte for byte; inputs are distinct per request, so a prediction routed to the wrong
request, reordered or reshaped fails. ``/metrics`` (``flowml_invocations_batch_requests``) proves that
batches really formed — or, at one client, that none did.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from flowml.serving import invoke
from tests.fixtures.ports import free_port
from tests.serving._models import POISON, RowScore
from tests.serving.conftest import Server, start_server, wait_ready

JSON = "application/json"
CSV = "text/csv"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Target:
    url: str
    model: Any  # the same model loaded in this process: the unbatched reference


@dataclass
class Servers:
    xgb: Target  # an xgboost regressor, batched (auto: a row-wise flavor)
    xgb_off: Target  # the same model with FLOWML_SERVING_INVOCATIONS_BATCHING=off
    custom: Target  # RowScore (params, a predict-time failure), opted in with =on
    frame: pd.DataFrame


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    import xgboost as xgb

    import flowml.pyfunc
    import flowml.xgboost
    from flowml.models import infer_signature

    root = tmp_path_factory.mktemp("batching")
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(rng.normal(size=(600, 6)), columns=[f"f{i}" for i in range(6)])
    booster = xgb.XGBRegressor(n_estimators=60, max_depth=5).fit(frame, frame.f0 * 2 - frame.f1 * frame.f2)
    flowml.xgboost.save_model(booster, root / "xgb", signature=infer_signature(frame, booster.predict(frame)))
    example = pd.DataFrame({"f0": [1.0], "f1": [0.5]})
    flowml.pyfunc.save_model(
        root / "custom",
        python_model=RowScore(),
        signature=infer_signature(example, np.zeros(1), params={"scale": 1.0}),
        model_config={"delay": 0.01},  # a slow predict, so concurrent requests queue behind it
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWML_", "MLFLOW_"))}
    base |= {"PYTHONPATH": str(REPO), "BENTOML_HOME": str(root / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    specs = {"xgb": ("xgb", "auto"), "xgb_off": ("xgb", "off"), "custom": ("custom", "on")}
    started: dict[str, Server] = {}
    try:
        for name, (model_dir, mode) in specs.items():
            port = free_port()
            cmd = [sys.executable, "-m", "flowml.cli_models", "serve", "-m", str(root / model_dir)]
            env = {**base, "FLOWML_SERVING_INVOCATIONS_BATCHING": mode}
            started[name] = start_server([*cmd, "-p", str(port)], port, env, root / f"{name}.log", str(root))
        for server in started.values():
            wait_ready(server)
        xgb_model = flowml.pyfunc.load_model(root / "xgb")
        yield Servers(
            Target(started["xgb"].url, xgb_model),
            Target(started["xgb_off"].url, xgb_model),
            Target(started["custom"].url, flowml.pyfunc.load_model(root / "custom")),
            frame,
        )
    finally:
        for server in started.values():
            server.stop()


def _split(frame: pd.DataFrame, **extra: Any) -> bytes:
    split = json.loads(frame.to_json(orient="split", index=False))
    return json.dumps({"dataframe_split": split, **extra}).encode()


def _records(frame: pd.DataFrame) -> bytes:
    return json.dumps({"dataframe_records": json.loads(frame.to_json(orient="records"))}).encode()


def _batch_metrics(url: str) -> dict[str, float]:
    """count / sum / le=1 bucket of the flowml_invocations_batch_requests histogram."""
    text = httpx.get(url + "/metrics", timeout=10).text
    out = {"count": 0.0, "sum": 0.0, "alone": 0.0}
    for name, key in (("_count", "count"), ("_sum", "sum"), ('_bucket{le="1.0"}', "alone")):
        match = re.search(rf"^flowml_invocations_batch_requests{re.escape(name)} (\S+)$", text, re.M)
        if match:
            out[key] = float(match.group(1))
    return out


def _post_all(url: str, requests: list[tuple[bytes, str]], clients: int = 24) -> list[tuple[int, bytes]]:
    with httpx.Client(timeout=60) as client:

        def post(request: tuple[bytes, str]) -> tuple[int, bytes]:
            resp = client.post(url + "/invocations", content=request[0], headers={"Content-Type": request[1]})
            return resp.status_code, resp.content

        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            return list(pool.map(post, requests))


def _assert_unbatched_answers(target: Target, requests: list[tuple[bytes, str]], answers: Any) -> None:
    for (body, ct), answer in zip(requests, answers, strict=True):
        assert answer == invoke(target.model, body, ct), body[:300]


def test_concurrent_requests_get_their_own_predictions(servers: Servers) -> None:
    frame = servers.frame
    requests: list[tuple[bytes, str]] = []
    for i in range(360):  # distinct rows for every request, 1-3 rows each, in six layouts
        part = frame.iloc[[(i * 7 + k) % len(frame) for k in range(1 + i % 3)]].reset_index(drop=True)
        kind = i % 6
        if kind == 0:
            requests.append((_records(part), JSON))
        elif kind == 1:
            requests.append((part.to_csv(index=False).encode(), CSV))
        elif kind == 2:
            requests.append((_records(part[part.columns[::-1]]), JSON))  # columns reordered
        elif kind == 3:
            requests.append((json.dumps({"instances": part.to_numpy().tolist()}).encode(), JSON))
        else:
            requests.append((_split(part), JSON))
    # Whether requests overlap depends on the scheduler: on a starved 2-core machine the client threads
    # can trickle requests in one at a time, each then (correctly) predicted alone. So the burst is sent
    # up to three times, every answer checked each time, until one formed a batch.
    for _ in range(3):
        before = _batch_metrics(servers.xgb.url)
        answers = _post_all(servers.xgb.url, requests)
        after = _batch_metrics(servers.xgb.url)
        assert [status for status, _ in answers] == [200] * len(requests)
        _assert_unbatched_answers(servers.xgb, requests, answers)
        assert after["sum"] - before["sum"] == len(requests)  # every request went through the batcher
        predicts = after["count"] - before["count"]
        batched = predicts - (after["alone"] - before["alone"])
        if batched > 0:
            break
    assert batched > 0, "no batch formed under 24 concurrent clients, three bursts"
    assert predicts < len(requests)


def test_mixed_window_bad_input_params_and_csv(servers: Servers) -> None:
    target = servers.custom
    requests: list[tuple[bytes, str]] = []
    for i in range(96):
        part = pd.DataFrame({"f0": [float(i), i + 0.25][: 1 + i % 2], "f1": [i / 16, 3.0][: 1 + i % 2]})
        kind = i % 8
        if kind == 0:
            requests.append((_split(part, params={"scale": 1.0 + i}), JSON))
        elif kind == 1:
            requests.append((part.to_csv(index=False).encode(), CSV))
        elif kind == 2:
            requests.append((_split(part.assign(f0=POISON)), JSON))  # fails inside predict()
        elif kind == 3:
            requests.append((_split(part.drop(columns=["f1"])), JSON))  # fails the signature
        elif kind == 4:
            requests.append((b'{"dataframe_split": {"columns": ["f0"], ', JSON))  # malformed
        elif kind == 5:
            requests.append((_records(part[["f1", "f0"]]), JSON))
        else:
            requests.append((_split(part), JSON))
    before = _batch_metrics(target.url)
    answers = _post_all(target.url, requests, clients=32)
    after = _batch_metrics(target.url)
    _assert_unbatched_answers(target, requests, answers)
    statuses = {kind: {answers[i][0] for i in range(kind, len(requests), 8)} for kind in range(8)}
    assert statuses == {0: {200}, 1: {200}, 2: {400}, 3: {400}, 4: {400}, 5: {200}, 6: {200}, 7: {200}}
    assert all(b"poisoned row" in answers[i][1] for i in range(2, len(requests), 8))
    # everything without params that passed the schema was queued; batches formed among them
    assert after["sum"] - before["sum"] == 12 * 5  # kinds 1, 2, 5, 6, 7
    assert after["count"] - before["count"] - (after["alone"] - before["alone"]) > 0


def test_one_client_requests_are_predicted_alone_at_once(servers: Servers) -> None:
    """A lone client never waits for company: each of its requests is predicted as a batch of its own
    (the latency against an unbatched server is a benchmark figure, benchmarks/serving)."""
    body = _split(servers.frame.head(1))
    headers = {"Content-Type": JSON}
    before = _batch_metrics(servers.xgb.url)
    with httpx.Client(timeout=30) as client:
        for _ in range(40):
            batched = client.post(servers.xgb.url + "/invocations", content=body, headers=headers)
            alone = client.post(servers.xgb_off.url + "/invocations", content=body, headers=headers)
            assert batched.status_code == alone.status_code == 200
            assert batched.json() == alone.json()
    after = _batch_metrics(servers.xgb.url)
    assert after["count"] - before["count"] == 40
    assert after["alone"] - before["alone"] == 40
