"""``runs/log-batch`` over HTTP: the hand-validated body (MLflow's error codes and wording) and
concurrent requests sharing group commits (each still succeeds or fails on its own)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowml.server.batch_body import parse_log_batch
from tests.fixtures.server import serve_in_thread

API = "/api/2.0/mlflow"


@contextlib.contextmanager
def _serve(store_uri: str, tmp_path: Path) -> Iterator[httpx.Client]:
    with (
        serve_in_thread(store_uri, str(tmp_path / "artifacts")) as url,
        httpx.Client(base_url=url + API, timeout=30) as client,
    ):
        yield client


@pytest.fixture
def api(tmp_path: Path) -> Iterator[httpx.Client]:
    """The body rules do not depend on the store: SQLite only."""
    with _serve(f"sqlite:///{tmp_path / 'store.db'}", tmp_path) as client:
        yield client


@pytest.fixture
def any_store_api(store_uri: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """SQLite and PostgreSQL."""
    with _serve(store_uri, tmp_path) as client:
        yield client


def _run(api: httpx.Client) -> str:
    run_id: str = api.post("/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]["run_id"]
    return run_id


def _history(api: httpx.Client, run_id: str, key: str) -> list[dict[str, Any]]:
    got = api.get("/metrics/get-history", params={"run_id": run_id, "metric_key": key})
    assert got.status_code == 200, got.text
    metrics: list[dict[str, Any]] = got.json().get("metrics", [])
    return metrics


def _error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error_code"], body["message"]


def test_protobuf_json_forms_are_accepted(api: httpx.Client) -> None:
    run_id = _run(api)
    body = {
        "run_uuid": run_id,  # the legacy name alone is enough
        "metrics": [
            {"key": "m", "value": 1, "timestamp": "1700000000000", "step": "3"},  # int64 as strings
            {"key": "m", "value": "NaN", "timestamp": 1700000000001, "step": 4},
            {"key": "m", "value": "-Infinity", "timestamp": 1700000000002.0},  # step defaults to 0
        ],
        "params": [{"key": "p", "value": 5}, {"key": "empty", "value": None}],
        "tags": [{"key": "mlflow.runName", "value": "renamed"}],
        "unknown_field": {"ignored": True},
    }
    assert api.post("/runs/log-batch", json=body).json() == {}
    points = {(p["step"], p["timestamp"]): p["value"] for p in _history(api, run_id, "m")}
    assert points == {(3, 1700000000000): 1.0, (4, 1700000000001): "NaN", (0, 1700000000002): "-Infinity"}
    run = api.get("/runs/get", params={"run_id": run_id}).json()["run"]
    assert {p["key"]: p["value"] for p in run["data"]["params"]} == {"p": "5", "empty": ""}
    assert run["info"]["run_name"] == "renamed"
    assert run["data"]["metrics"] == [{"key": "m", "value": "NaN", "timestamp": 1700000000001, "step": 4}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Missing value for required parameter 'run_id'."),
        ({"run_id": 7}, "Invalid value 7 for parameter 'run_id' supplied: Hint: Value was of type 'int'."),
        ({"metrics": {"key": "m"}}, 'Invalid value {"key":"m"} for parameter \'metrics\' supplied'),
        (
            {"metrics": [{"key": "m", "value": 1}]},
            "Missing value for required parameter 'metrics[0].timestamp'.",
        ),
        (
            {"metrics": [{"value": 1, "timestamp": 1}]},
            "Missing value for required parameter 'metrics[0].key'.",
        ),
        (
            {"metrics": [{"key": "m", "timestamp": 1}]},
            "Missing value for required parameter 'metrics[0].value'.",
        ),
        ({"metrics": [{"key": "m", "value": "abc", "timestamp": 1}]}, "'metrics[0].value'"),
        ({"metrics": [{"key": "m", "value": True, "timestamp": 1}]}, "'metrics[0].value'"),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": 2**63}]}, "'metrics[0].timestamp'"),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": -1}]}, "'metrics[0].timestamp'"),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": 1.5}]}, "'metrics[0].timestamp'"),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": -(2**63) - 1}]}, "'metrics[0].step'"),
        ({"metrics": [{"key": "m", "value": 10**400, "timestamp": 1}]}, "Malformed JSON request body"),
        ({"metrics": [{"key": "../m", "value": 1, "timestamp": 1}]}, "Invalid metric name: '../m'"),
        ({"params": [{"value": "v"}]}, "Missing value for required parameter 'params[0].key'."),
        ({"params": [{"key": "p", "value": "1"}, {"key": "p", "value": "2"}]}, "Duplicate parameter keys"),
        ({"tags": "x"}, "for parameter 'tags' supplied"),
        ({"tags": [{"key": "t", "value": "v" * 8001}]}, "exceeds the limit of 8000"),
        (
            {"metrics": [{"key": "m", "value": 1, "timestamp": i} for i in range(1001)]},
            "at most 1000 metrics",
        ),
    ],
)
def test_bad_bodies_are_400_invalid_parameter_value_and_write_nothing(
    api: httpx.Client, body: dict[str, Any], message: str
) -> None:
    run_id = _run(api)
    payload = body if "run_id" in body or body == {} else {"run_id": run_id, **body}
    status, code, text = _error(api.post("/runs/log-batch", json=payload))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE")
    assert message in text
    data = api.get("/runs/get", params={"run_id": run_id}).json()["run"]["data"]
    assert "metrics" not in data and "params" not in data


@pytest.mark.parametrize("raw", [b"{", b"[1, 2]", b'"run"', b"\xff\xfe"])
def test_malformed_json_is_400(api: httpx.Client, raw: bytes) -> None:
    response = api.post("/runs/log-batch", content=raw, headers={"content-type": "application/json"})
    assert _error(response)[:2] == (400, "INVALID_PARAMETER_VALUE")


def test_unknown_and_deleted_runs_use_mlflow_codes(any_store_api: httpx.Client) -> None:
    api = any_store_api
    point = [{"key": "m", "value": 1.0, "timestamp": 1}]
    missing = api.post("/runs/log-batch", json={"run_id": "f" * 32, "metrics": point})
    assert _error(missing)[:2] == (404, "RESOURCE_DOES_NOT_EXIST")
    run_id = _run(api)
    assert api.post("/runs/delete", json={"run_id": run_id}).status_code == 200
    deleted = api.post("/runs/log-batch", json={"run_id": run_id, "metrics": point})
    status, code, text = _error(deleted)
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE") and "must be in the 'active' state" in text


def test_concurrent_requests_each_get_their_own_outcome(any_store_api: httpx.Client) -> None:
    """32 concurrent requests (grouped into shared transactions by the server): the one changing a
    param and the one for a deleted run fail alone; every other point lands."""
    api = any_store_api
    run_id, deleted = _run(api), _run(api)
    api.post("/runs/log-parameter", json={"run_id": run_id, "key": "fixed", "value": "1"})
    api.post("/runs/delete", json={"run_id": deleted})

    def body(i: int) -> dict[str, Any]:
        metrics = [{"key": f"w{i}", "value": float(s), "timestamp": 1000 + s, "step": s} for s in range(50)]
        params = [{"key": "fixed", "value": "2" if i == 7 else "1"}, {"key": f"p{i}", "value": str(i)}]
        return {"run_id": deleted if i == 11 else run_id, "metrics": metrics, "params": params}

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=api.base_url, timeout=60) as client:
            return await asyncio.gather(*(client.post("/runs/log-batch", json=body(i)) for i in range(32)))

    responses = asyncio.run(send_all())
    outcomes = {i: r.status_code for i, r in enumerate(responses)}
    assert outcomes == {i: 400 if i in (7, 11) else 200 for i in range(32)}
    assert "Changing param values" in responses[7].json()["message"]
    assert "active" in responses[11].json()["message"]
    params = {
        p["key"]: p["value"]
        for p in api.get("/runs/get", params={"run_id": run_id}).json()["run"]["data"]["params"]
    }
    assert params == {"fixed": "1", **{f"p{i}": str(i) for i in range(32) if i not in (7, 11)}}
    for i in (0, 7, 31):
        assert len(_history(api, run_id, f"w{i}")) == (0 if i == 7 else 50)


def test_the_body_is_documented_in_openapi(api: httpx.Client) -> None:
    schema = httpx.get(str(api.base_url).rstrip("/").removesuffix(API) + "/openapi.json").json()
    body = schema["paths"][API + "/runs/log-batch"]["post"]["requestBody"]
    metric = body["content"]["application/json"]["schema"]["properties"]["metrics"]["items"]
    assert metric["required"] == ["key", "value", "timestamp"]


def test_points_with_a_model_id_are_also_the_logged_models_metrics(any_store_api: httpx.Client) -> None:
    """MLflow 3 sends ``model_id`` (and a dataset) on metrics: the run keeps every point, the logged model
    the ones naming it; a point naming an unknown model is refused before anything is written."""
    api = any_store_api
    run_id = _run(api)
    model_id = api.post("/logged-models", json={"experiment_id": "0", "name": "m"}).json()["model"]["info"][
        "model_id"
    ]
    points = [
        {"key": "acc", "value": 0.5, "timestamp": 10, "step": 1, "model_id": model_id},
        {
            "key": "acc",
            "value": "NaN",
            "timestamp": 11,
            "step": 2,
            "model_id": model_id,
            "dataset_name": "ev",
            "dataset_digest": "d1",
        },
        {"key": "acc", "value": 0.7, "timestamp": 12, "step": 3},
    ]
    assert api.post("/runs/log-batch", json={"run_id": run_id, "metrics": points}).status_code == 200
    single = {"run_id": run_id, "key": "loss", "value": 2.5, "timestamp": 13, "model_id": model_id}
    assert api.post("/runs/log-metric", json=single).status_code == 200
    assert [m["value"] for m in _history(api, run_id, "acc")] == [0.5, "NaN", 0.7]
    metrics = api.get(f"/logged-models/{model_id}").json()["model"]["data"]["metrics"]
    assert metrics == [
        {"key": "acc", "value": 0.5, "timestamp": 10, "step": 1, "model_id": model_id, "run_id": run_id},
        {"key": "acc", "value": "NaN", "timestamp": 11, "step": 2, "model_id": model_id, "run_id": run_id}
        | {"dataset_name": "ev", "dataset_digest": "d1"},
        {"key": "loss", "value": 2.5, "timestamp": 13, "step": 0, "model_id": model_id, "run_id": run_id},
    ]

    # a refused request writes nothing, for the run or the model
    api.post("/runs/log-parameter", json={"run_id": run_id, "key": "lr", "value": "0.1"})
    changed = {
        "run_id": run_id,
        "params": [{"key": "lr", "value": "0.2"}],
        "metrics": [{**points[0], "step": 9}],
    }
    assert _error(api.post("/runs/log-batch", json=changed))[:2] == (400, "INVALID_PARAMETER_VALUE")
    for timestamp in (-1, 2**63):
        bad_point = {**single, "timestamp": timestamp, "step": 9}
        assert _error(api.post("/runs/log-metric", json=bad_point))[:2] == (400, "INVALID_PARAMETER_VALUE")
    assert len(api.get(f"/logged-models/{model_id}").json()["model"]["data"]["metrics"]) == 3
    assert [m["step"] for m in _history(api, run_id, "acc")] == [1, 2, 3]

    unknown = {"key": "f1", "value": 1.0, "timestamp": 14, "model_id": "m-" + "0" * 32}
    refused = api.post("/runs/log-batch", json={"run_id": run_id, "metrics": [unknown]})
    assert _error(refused)[:2] == (404, "RESOURCE_DOES_NOT_EXIST")
    assert _history(api, run_id, "f1") == []
    bad = api.post("/runs/log-batch", json={"run_id": run_id, "metrics": [{**unknown, "model_id": 7}]})
    assert _error(bad)[:2] == (400, "INVALID_PARAMETER_VALUE")
    assert "metrics[0].model_id" in _error(bad)[2]


@pytest.mark.parametrize("field", [b'"model_id"', b'"model\\u005fid"'])
def test_a_model_id_is_found_however_the_body_spells_it(field: bytes) -> None:
    body = b'{"run_id": "%s", "metrics": [{"key": "k", "value": 1, "timestamp": 5, %s: "m-1"}]}' % (
        b"a" * 32,
        field,
    )
    assert [(p.key, p.model_id, p.timestamp) for p in parse_log_batch(body).model_points] == [("k", "m-1", 5)]
