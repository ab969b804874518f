"""The /invocations micro-batcher in-process: real models, a real event loop and predict thread.

Every answer is compared byte for byte with :func:`flowml.serving.invoke` on the same body (the
unbatched path), so a misrouted, reshaped or re-typed prediction fails. ``asyncio.gather`` enqueues
every request before the first flush runs, so the batches here are deterministic.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from flowml.serving import invoke, parse_json_input
from flowml.serving.batching import InvocationBatcher, batching_enabled
from flowml.serving.protocol import double_columns, parse_double_rows
from tests.serving._models import POISON, RowScore

JSON = "application/json"
CSV = "text/csv"


@dataclass
class Recorder:
    """``on_batch`` hook: (requests, rows) of every predict of queued requests."""

    calls: list[tuple[int, int]] = field(default_factory=list)

    def __call__(self, requests: int, rows: int) -> None:
        self.calls.append((requests, rows))


def _split(frame: pd.DataFrame, **extra: Any) -> bytes:
    return json.dumps(
        {"dataframe_split": json.loads(frame.to_json(orient="split", index=False)), **extra}
    ).encode()


def _records(frame: pd.DataFrame) -> bytes:
    return json.dumps({"dataframe_records": json.loads(frame.to_json(orient="records"))}).encode()


def _score_all(batcher: InvocationBatcher, requests: list[tuple[bytes, str]]) -> list[tuple[int, bytes]]:
    async def run() -> list[tuple[int, bytes]]:
        return list(await asyncio.gather(*(batcher.score(body, ct) for body, ct in requests)))

    try:
        return asyncio.run(run())
    finally:
        batcher.close()


def _assert_same_as_unbatched(model: Any, requests: list[tuple[bytes, str]], answers: Any) -> None:
    for (body, ct), answer in zip(requests, answers, strict=True):
        assert answer == invoke(model, body, ct), body[:200]


@pytest.fixture(scope="module")
def xgb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, pd.DataFrame]:
    import xgboost as xgb

    import flowml.xgboost
    from flowml.models import infer_signature
    from flowml.pyfunc import load_model

    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(400, 4)), columns=["a", "b", "c", "d"])
    model = xgb.XGBRegressor(n_estimators=30, max_depth=4).fit(frame, frame.a * 3 + frame.b**2)
    path = tmp_path_factory.mktemp("xgb") / "m"
    flowml.xgboost.save_model(model, path, signature=infer_signature(frame, model.predict(frame)))
    return load_model(path), frame


def _row_score(tmp: Path, output: str = "ndarray") -> Any:
    import flowml.pyfunc
    from flowml.models import infer_signature

    frame = pd.DataFrame({"f0": [1.0, 2.0], "f1": [0.5, 0.25]})
    signature = infer_signature(frame, np.zeros(2), params={"scale": 1.0})
    flowml.pyfunc.save_model(
        tmp / output, python_model=RowScore(), signature=signature, model_config={"output": output}
    )
    return flowml.pyfunc.load_model(tmp / output)


def test_double_rows_fast_path_builds_the_general_frame() -> None:
    frame = pd.DataFrame({"x": [0.5, -1.25, 3.0], "y": [2.0, 0.125, 1e300]})
    for body in (_split(frame), _records(frame)):
        rows = parse_double_rows(body, ("x", "y"))
        assert rows is not None
        general, params = parse_json_input(body)
        assert params is None
        pd.testing.assert_frame_equal(pd.DataFrame(rows, columns=["x", "y"]), general, check_exact=True)
    general_only = [
        _split(frame, params={"k": 1}),  # params
        _split(frame[["y", "x"]]),  # other column order
        _split(frame.astype({"x": "int64"})),  # ints
        json.dumps({"dataframe_split": {"columns": ["x", "y"], "data": [[1.5, None]]}}).encode(),
        json.dumps({"dataframe_split": {"columns": ["x", "y"], "data": [[1.5]]}}).encode(),
        json.dumps({"dataframe_split": {"columns": ["x", "y"], "data": []}}).encode(),
        json.dumps({"dataframe_split": {"columns": ["x", "y"], "data": [[1.5, 2.0]], "index": [7]}}).encode(),
        json.dumps({"dataframe_records": [{"y": 1.5, "x": 2.5}]}).encode(),
        json.dumps({"instances": [[1.5, 2.5]]}).encode(),
        b"{not json",
    ]
    for body in general_only:
        assert parse_double_rows(body, ("x", "y")) is None, body


def test_double_columns_only_for_all_double_signatures(xgb: tuple[Any, pd.DataFrame]) -> None:
    from flowml.models import infer_signature

    model, _ = xgb
    assert double_columns(model.metadata.signature.inputs) == ("a", "b", "c", "d")
    mixed = infer_signature(pd.DataFrame({"a": [1.0], "n": [1]}))
    assert double_columns(mixed.inputs) is None
    assert double_columns(None) is None


def test_concurrent_requests_get_their_own_predictions(xgb: tuple[Any, pd.DataFrame]) -> None:
    model, frame = xgb
    requests: list[tuple[bytes, str]] = []
    for i in range(40):  # distinct rows per request, in every layout the protocol accepts
        part = frame.iloc[i * 3 : i * 3 + 1 + i % 3].reset_index(drop=True)
        kind = i % 8
        if kind == 0:
            requests.append((_records(part), JSON))
        elif kind == 1:
            requests.append((_records(part[["d", "c", "b", "a"]]), JSON))  # reordered → enforced
        elif kind == 2:
            body = json.dumps({"instances": part.to_numpy().tolist()}).encode()
            requests.append((body, JSON))
        elif kind == 3:
            requests.append((part.to_csv(index=False).encode(), CSV))
        elif kind == 4:
            requests.append((_split(part.assign(extra=1.0)), JSON))  # extra column dropped
        elif kind == 5:
            requests.append((_split((part > 0).astype("int64")), JSON))  # 0/1 ints → double
        else:
            requests.append((_split(part), JSON))
    recorder = Recorder()
    batcher = InvocationBatcher(model, on_batch=recorder)
    answers = _score_all(batcher, requests)
    assert all(status == 200 for status, _ in answers), answers
    _assert_same_as_unbatched(model, requests, answers)
    assert sum(n for n, _ in recorder.calls) == len(requests)
    assert max(n for n, _ in recorder.calls) > 1  # it did batch
    assert batcher.enabled


def test_bad_requests_do_not_fail_their_batch(xgb: tuple[Any, pd.DataFrame]) -> None:
    model, frame = xgb
    good = [(_split(frame.iloc[[i]].reset_index(drop=True)), JSON) for i in range(6)]
    bad = [
        (b"{not json", JSON),
        (_split(frame.head(1).drop(columns=["b"])), JSON),  # missing column
        (_records(frame.head(1).astype({"a": str}).assign(a="x")), JSON),  # string in a double column
        (_split(frame.head(1).assign(a=7).astype({"a": "int64"})), JSON),  # int 7 → double is refused
        (_split(frame.head(1)), "text/plain"),
    ]
    requests = [good[0], bad[0], good[1], bad[1], good[2], bad[2], good[3], bad[3], good[4], bad[4], good[5]]
    answers = _score_all(InvocationBatcher(model), requests)
    _assert_same_as_unbatched(model, requests, answers)
    assert [status for status, _ in answers] == [200, 400, 200, 400, 200, 400, 200, 400, 200, 415, 200]


def test_predict_failure_falls_back_to_each_request(tmp_path: Path) -> None:
    model = _row_score(tmp_path)
    frames = [pd.DataFrame({"f0": [float(i)], "f1": [i / 8]}) for i in range(6)]
    frames[3] = pd.DataFrame({"f0": [POISON], "f1": [0.5]})  # passes the schema, fails in predict
    requests = [(_split(f), JSON) for f in frames]
    recorder = Recorder()
    batcher = InvocationBatcher(model, enabled=batching_enabled(model, "on"), on_batch=recorder)
    answers = _score_all(batcher, requests)
    _assert_same_as_unbatched(model, requests, answers)
    assert [status for status, _ in answers] == [200, 200, 200, 400, 200, 200]
    assert "poisoned row" in orjson.loads(answers[3][1])["message"]
    assert recorder.calls == [(6, 6)]  # one batch was tried
    assert batcher.enabled  # a failure is not a reason to stop batching


def test_params_requests_are_predicted_alone(tmp_path: Path) -> None:
    model = _row_score(tmp_path)
    requests = []
    for i in range(8):
        frame = pd.DataFrame({"f0": [float(i), i + 0.5], "f1": [1.0 + i, 2.0]})
        extra = {"params": {"scale": i + 1.0}} if i % 2 else {}
        requests.append((_split(frame, **extra), JSON))
    recorder = Recorder()
    answers = _score_all(InvocationBatcher(model, on_batch=recorder), requests)
    _assert_same_as_unbatched(model, requests, answers)
    assert all(status == 200 for status, _ in answers)
    # params change the answer (scale), so a misapplied scale would be caught above
    assert answers[1] != invoke(model, _split(pd.DataFrame({"f0": [1.0, 1.5], "f1": [2.0, 2.0]})), JSON)
    assert sum(n for n, _ in recorder.calls) == 4  # only the four requests without params were queued


@pytest.mark.parametrize("output", ["ndarray", "series", "frame", "list"])
def test_row_aligned_outputs_split_like_unbatched(tmp_path: Path, output: str) -> None:
    model = _row_score(tmp_path, output)
    requests = [
        (_split(pd.DataFrame({"f0": [float(i)] * (1 + i % 3), "f1": [i / 3] * (1 + i % 3)})), JSON)
        for i in range(9)
    ]
    recorder = Recorder()
    batcher = InvocationBatcher(model, enabled=batching_enabled(model, "on"), on_batch=recorder)
    answers = _score_all(batcher, requests)
    assert all(status == 200 for status, _ in answers)
    _assert_same_as_unbatched(model, requests, answers)
    assert recorder.calls == [(9, sum(1 + i % 3 for i in range(9)))]
    assert batcher.enabled


@pytest.mark.parametrize("output", ["dict", "summary"])
def test_unaligned_output_falls_back_and_stops_batching(tmp_path: Path, output: str) -> None:
    model = _row_score(tmp_path, output)
    requests = [(_split(pd.DataFrame({"f0": [float(i)], "f1": [0.5]})), JSON) for i in range(5)]
    batcher = InvocationBatcher(model, enabled=batching_enabled(model, "on"))
    answers = _score_all(batcher, requests)
    assert all(status == 200 for status, _ in answers)
    _assert_same_as_unbatched(model, requests, answers)
    assert not batcher.enabled
    again = _score_all(batcher, requests)  # unbatched from now on, same answers
    assert again == answers


def test_batching_modes(xgb: tuple[Any, pd.DataFrame], tmp_path: Path) -> None:
    model, _ = xgb
    custom = _row_score(tmp_path)
    assert batching_enabled(model, "auto") and batching_enabled(model, "on")
    assert not batching_enabled(model, "off")
    assert not batching_enabled(custom, "auto")  # a custom model must opt in: it may not be row-wise
    assert batching_enabled(custom, "on")
    recorder = Recorder()
    requests = [(_split(pd.DataFrame({"f0": [float(i)], "f1": [1.0]})), JSON) for i in range(4)]
    batcher = InvocationBatcher(custom, enabled=False, on_batch=recorder)
    _assert_same_as_unbatched(custom, requests, _score_all(batcher, requests))
    assert recorder.calls == []


def test_max_batch_size_and_unbatchable_layouts(xgb: tuple[Any, pd.DataFrame]) -> None:
    model, frame = xgb
    requests = [(_split(frame.iloc[[i]].reset_index(drop=True)), JSON) for i in range(10)]
    requests.append((_split(frame.head(9)), JSON))  # larger than a batch: predicted alone
    indexed = json.loads(frame.iloc[[3, 1]].to_json(orient="split"))
    assert indexed["index"] == [3, 1]
    requests.append((json.dumps({"dataframe_split": indexed}).encode(), JSON))  # an index: not batched
    columnar = {c: frame[c].head(2).tolist() for c in frame}  # prepared into a plain frame: batched
    requests.append((json.dumps({"inputs": columnar}).encode(), JSON))
    recorder = Recorder()
    answers = _score_all(InvocationBatcher(model, max_batch_size=4, on_batch=recorder), requests)
    assert all(status == 200 for status, _ in answers)
    _assert_same_as_unbatched(model, requests, answers)
    assert all(rows <= 4 for n, rows in recorder.calls if n > 1)
    assert (1, 9) in recorder.calls
    assert sum(n for n, _ in recorder.calls) == 12  # all but the request with an index were queued


def test_lone_request_is_answered_without_batch(xgb: tuple[Any, pd.DataFrame]) -> None:
    model, frame = xgb
    recorder = Recorder()
    batcher = InvocationBatcher(model, on_batch=recorder)
    body = _split(frame.head(2))

    async def sequential() -> list[tuple[int, bytes]]:
        return [await batcher.score(body, JSON) for _ in range(5)]

    try:
        answers = asyncio.run(sequential())
    finally:
        batcher.close()
    assert answers == [invoke(model, body, JSON)] * 5
    assert recorder.calls == [(1, 2)] * 5
