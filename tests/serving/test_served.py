"""Real processes, real HTTP: a Bento built by `flowml models build` served by `bentoml serve`, and an
xgboost model served by `flowml models serve`; every MLflow payload format compared with local predict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.fixtures.ports import free_port
from tests.serving.conftest import Server, ServingEnv, start_server, wait_ready


@dataclass
class Served:
    url: str
    expected: Any  # local predictions on `frame`
    frame: pd.DataFrame
    model_uri: str


@dataclass
class Stack:
    bento_tag: str
    dockerfile: str
    sklearn: Served
    xgboost: Served


@pytest.fixture(scope="module")
def stack(serving_env: ServingEnv) -> Iterator[Stack]:
    from flowml.pyfunc import load_model

    env, root = serving_env.env, serving_env.root
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "flowml.cli_models",
            "build",
            "-m",
            "models:/iris-clf@champion",
            "--bentoml-home",
            str(serving_env.bentoml_home),
        ],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    tag, dockerfile = build.stdout.strip().splitlines()[-2:]
    servers: list[Server] = []
    try:
        bento_port, cli_port = free_port(), free_port()
        bentoml_cli = os.path.join(os.path.dirname(sys.executable), "bentoml")
        servers.append(
            start_server(
                [bentoml_cli, "serve", tag, "--host", "127.0.0.1", "--port", str(bento_port)],
                bento_port,
                env,
                root / "bento-serve.log",
                cwd="/",
            )
        )
        servers.append(
            start_server(
                [
                    sys.executable,
                    "-m",
                    "flowml.cli_models",
                    "serve",
                    "-m",
                    serving_env.xgb_uri,
                    "-p",
                    str(cli_port),
                ],
                cli_port,
                env,
                root / "cli-serve.log",
                cwd=str(root),
            )
        )
        for server in servers:
            wait_ready(server)
        x_iris = serving_env.iris[0].iloc[::15].reset_index(drop=True)
        xgb_frame = serving_env.frame.head(7)
        yield Stack(
            tag,
            dockerfile,
            Served(
                servers[0].url, load_model(serving_env.sk_uri).predict(x_iris), x_iris, serving_env.sk_uri
            ),
            Served(
                servers[1].url,
                load_model(serving_env.xgb_uri).predict(xgb_frame),
                xgb_frame,
                serving_env.xgb_uri,
            ),
        )
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(params=["sklearn", "xgboost"])
def served(request: pytest.FixtureRequest, stack: Stack) -> Served:
    result: Served = getattr(stack, request.param)
    return result


def _post(url: str, body: Any, content_type: str = "application/json") -> httpx.Response:
    content = body if isinstance(body, str | bytes) else json.dumps(body)
    return httpx.post(
        url + "/invocations", content=content, headers={"Content-Type": content_type}, timeout=30
    )


def _payloads(frame: pd.DataFrame) -> dict[str, Any]:
    split = json.loads(frame.to_json(orient="split", index=False))
    records = json.loads(frame.to_json(orient="records"))
    return {
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": {c: frame[c].tolist() for c in frame.columns}},
        "inputs_rows": {"inputs": frame.to_numpy().tolist()},
        "with_params": {"dataframe_split": split, "params": {}},
    }


@pytest.mark.parametrize(
    "fmt", ["dataframe_split", "dataframe_records", "instances", "inputs", "inputs_rows", "with_params"]
)
def test_invocations_formats_match_local_predict(served: Served, fmt: str) -> None:
    resp = _post(served.url, _payloads(served.frame)[fmt])
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    np.testing.assert_allclose(resp.json()["predictions"], np.asarray(served.expected))


def test_invocations_csv(served: Served) -> None:
    resp = _post(served.url, served.frame.to_csv(index=False), "text/csv")
    assert resp.status_code == 200, resp.text
    np.testing.assert_allclose(resp.json()["predictions"], np.asarray(served.expected))
    resp = _post(served.url, served.frame.to_csv(index=False), "text/csv; charset=utf-8")
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "application/json; format=pandas-split",
        "application/json; charset=latin-1",
    ],
)
def test_unsupported_content_type_is_415(stack: Stack, content_type: str) -> None:
    payload = _payloads(stack.sklearn.frame)["dataframe_split"]
    resp = _post(stack.sklearn.url, payload, content_type)
    assert resp.status_code == 415
    assert resp.json()["error_code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        "{}",
        "[1, 2]",
        json.dumps({"params": {"a": 1}}),
        json.dumps({"dataframe_split": {"columns": ["a"], "data": [[1]]}, "inputs": [[1]]}),
        json.dumps({"dataframe_records": "nope"}),
    ],
    ids=["malformed", "no-key", "list-body", "params-only", "two-keys", "records-not-list"],
)
def test_bad_requests_are_400_json(stack: Stack, body: str) -> None:
    resp = _post(stack.sklearn.url, body)
    assert resp.status_code == 400, resp.text
    error = resp.json()
    assert error["error_code"] == "BAD_REQUEST"
    assert "Traceback" not in error["message"]


def test_schema_violation_names_missing_column(served: Served) -> None:
    frame = served.frame.drop(columns=[served.frame.columns[1]])
    resp = _post(served.url, {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))})
    assert resp.status_code == 400
    error = resp.json()
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert str(served.frame.columns[1]) in error["message"]
    assert "Traceback" not in error["message"]


def test_incompatible_type_is_400(stack: Stack) -> None:
    frame = stack.sklearn.frame.astype(str)
    frame.iloc[0, 0] = "abc"
    resp = _post(stack.sklearn.url, {"dataframe_records": json.loads(frame.to_json(orient="records"))})
    assert resp.status_code == 400
    assert "Traceback" not in resp.text


def test_typed_predict(served: Served) -> None:
    records = json.loads(served.frame.to_json(orient="records"))
    resp = httpx.post(served.url + "/predict", json={"records": records}, timeout=30)
    assert resp.status_code == 200, resp.text
    np.testing.assert_allclose(resp.json(), np.asarray(served.expected))
    bad = [{k: v for k, v in r.items() if k != served.frame.columns[0]} for r in records]
    resp = httpx.post(served.url + "/predict", json={"records": bad}, timeout=30)
    assert resp.status_code == 400
    assert str(served.frame.columns[0]) in resp.text


@pytest.mark.parametrize("path", ["/ping", "/health", "/version", "/readyz", "/livez", "/metrics"])
def test_health_endpoints(served: Served, path: str) -> None:
    resp = httpx.get(served.url + path, timeout=10)
    assert resp.status_code == 200


def test_version_reports_model(stack: Stack, serving_env: ServingEnv) -> None:
    info = httpx.get(stack.sklearn.url + "/version", timeout=10).json()
    assert info["flowml_version"]
    assert info["labels"]["flowml.registered_model"] == serving_env.registered


def test_bento_from_alias_carries_registry_labels(stack: Stack, serving_env: ServingEnv) -> None:
    import yaml

    from flowml.deploy.bento import model_dir_sha256
    from flowml.models.uri import resolve_model_uri

    bento_dir = serving_env.bentoml_home / "bentos" / stack.bento_tag.replace(":", os.sep)
    assert stack.dockerfile == str(bento_dir / "env" / "docker" / "Dockerfile")
    dockerfile = (bento_dir / "env" / "docker" / "Dockerfile").read_text()
    assert "requirements.txt" in dockerfile
    meta = yaml.safe_load((bento_dir / "bento.yaml").read_text())
    labels = meta["labels"]
    assert labels["flowml.registered_model"] == serving_env.registered
    assert labels["flowml.model_version"] == serving_env.version
    assert labels["flowml.run_id"] == serving_env.run_id
    with pytest.MonkeyPatch.context() as mp:
        for key, value in serving_env.env.items():
            if key.startswith("FLOWML_"):
                mp.setenv(key, value)
        local = resolve_model_uri(serving_env.sk_uri, str(serving_env.root / "dl")).local_path
    assert labels["flowml.sha256"] == model_dir_sha256(local)
    # the BentoML model carries the same labels, and the model files under mlmodel/
    model_tag = labels["flowml.bento_model"]
    model_dir = serving_env.bentoml_home / "models" / model_tag.replace(":", os.sep)
    model_meta = yaml.safe_load((model_dir / "model.yaml").read_text())
    assert model_meta["labels"]["flowml.sha256"] == labels["flowml.sha256"]
    assert (model_dir / "mlmodel" / "MLmodel").is_file()
    requirements = (bento_dir / "env" / "python" / "requirements.txt").read_text()
    assert "scikit-learn" in requirements


def test_bento_batches_concurrent_invocations(stack: Stack, serving_env: ServingEnv) -> None:
    """The built Bento micro-batches /invocations: concurrent answers equal unbatched local scoring."""
    import concurrent.futures
    import re

    from flowml.pyfunc import load_model
    from flowml.serving import invoke

    x_iris = serving_env.iris[0]
    requests = []
    for i in range(120):
        part = x_iris.iloc[[i % 150, (i * 7 + 3) % 150][: 1 + i % 2]].reset_index(drop=True)
        if i % 3 == 0:
            requests.append((part.to_csv(index=False).encode(), "text/csv"))
        elif i % 3 == 1:
            records = part.to_dict(orient="records")
            requests.append((json.dumps({"dataframe_records": records}).encode(), "application/json"))
        else:
            split = json.loads(part.to_json(orient="split", index=False))
            requests.append((json.dumps({"dataframe_split": split}).encode(), "application/json"))

    def queued() -> float:
        text = httpx.get(stack.sklearn.url + "/metrics", timeout=10).text
        match = re.search(r"^flowml_invocations_batch_requests_sum (\S+)$", text, re.M)
        return float(match.group(1)) if match else 0.0

    before = queued()
    with httpx.Client(timeout=60) as client, concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(
                lambda r: client.post(
                    stack.sklearn.url + "/invocations", content=r[0], headers={"Content-Type": r[1]}
                ),
                requests,
            )
        )
    model = load_model(serving_env.sk_uri)
    for (body, content_type), resp in zip(requests, answers, strict=True):
        assert (resp.status_code, resp.content) == invoke(model, body, content_type)
    assert queued() - before == len(requests)  # each went through the batcher
