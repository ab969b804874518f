"""Structured logs of a real ``flowml server`` process: a request id on every request (the caller's
when sane), returned in ``X-Request-ID``, on the access line and on records emitted in the thread
pool while handling the request; JSON lines (uvicorn's too) or text."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import httpx

from flowml.server import ServerSettings, create_app
from flowml.server.logs import RequestIdFilter, request_id_from_header
from tests.fixtures.server import flowml_server_popen

API = "/api/2.0/mlflow"
UPLOAD = "/api/2.0/mlflow-artifacts/artifacts"


def _wait_for(log: Path, needle: str, timeout: float = 10) -> str:
    """Log lines are written when the response is done; the client may see it a moment earlier."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if needle in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{needle!r} never logged:\n{log.read_text(errors='replace')[-3000:]}")


def test_request_id_rules() -> None:
    assert request_id_from_header(b"abc-123_X.y:z") == "abc-123_X.y:z"
    amzn = "Root=1-5759e988-bd862e3fe1be46a994272793"  # an AWS load balancer's trace id
    assert request_id_from_header(amzn.encode()) == amzn
    assert request_id_from_header(b"a" * 128) == "a" * 128
    for forged in (b"a b", b"x\r\nINFO fake line", b"", b"\xff", b"a" * 129, b'{"json":1}'):
        generated = request_id_from_header(forged)
        assert re.fullmatch(r"[0-9a-f]{32}", generated), forged
    assert request_id_from_header(None) != request_id_from_header(None)


def test_json_logs_carry_the_request_id_everywhere(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    env = {"FLOWML_SERVER_LOG_FORMAT": "json", "FLOWML_SERVER_LOG_LEVEL": "debug"}
    with flowml_server_popen(
        f"sqlite:///{tmp_path / 'l.db'}", str(tmp_path / "artifacts"), env=env, log=log
    ) as (url, _):
        got = httpx.get(f"{url}{API}/experiments/get?experiment_id=0", headers={"X-Request-ID": "trace-42"})
        assert got.headers["x-request-id"] == "trace-42"
        forged = httpx.get(f"{url}{API}/experiments/get?experiment_id=0", headers={"X-Request-ID": "a b"})
        generated = forged.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
        missing = httpx.get(f"{url}{API}/experiments/get?experiment_id=404404")
        assert missing.status_code == 404 and len(missing.headers["x-request-id"]) == 32
        # an upload: the artifact store logs from FastAPI's thread pool while handling it
        put = httpx.put(
            f"{url}{UPLOAD}/0/r1/model.bin", content=b"0" * 1000, headers={"X-Request-ID": "up-7"}
        )
        assert put.status_code == 200 and put.headers["x-request-id"] == "up-7"
        run = httpx.post(f"{url}{API}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]
        batch = {"run_id": run["run_id"], "metrics": [{"key": "m", "value": 1, "timestamp": 1}]}
        logged = httpx.post(f"{url}{API}/runs/log-batch", json=batch, headers={"X-Request-ID": "batch-9"})
        assert logged.status_code == 200 and logged.headers["x-request-id"] == "batch-9"
        _wait_for(log, '"up-7"')
        _wait_for(log, '"batch-9"')

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(
        r["logger"].startswith("uvicorn") and "Started server process" in r["message"] for r in records
    )
    access = [r for r in records if r["logger"] == "flowml.server.access"]
    traced = next(r for r in access if r.get("request_id") == "trace-42")
    assert traced["method"] == "GET" and traced["status"] == 200
    assert traced["route"] == traced["path"] == f"{API}/experiments/get"
    assert isinstance(traced["duration_ms"], float) and traced["duration_ms"] > 0
    assert any(r.get("request_id") == generated for r in access)
    assert any(r.get("request_id") == missing.headers["x-request-id"] and r["status"] == 404 for r in access)
    upload = next(r for r in access if r.get("request_id") == "up-7")
    assert upload["route"] == f"{UPLOAD}/{{artifact_path}}" and upload["path"] == f"{UPLOAD}/0/r1/model.bin"
    stored = next(
        r for r in records if r["logger"] == "flowml.artifacts.base" and "model.bin" in r["message"]
    )
    assert stored["request_id"] == "up-7"  # emitted in a worker thread, still tagged
    batch_line = next(r for r in access if r.get("request_id") == "batch-9")  # the pure-ASGI lane's
    assert (batch_line["method"], batch_line["status"]) == ("POST", 200)
    assert batch_line["route"] == batch_line["path"] == f"{API}/runs/log-batch"
    assert not any("request_id" in r for r in records if r["logger"].startswith("uvicorn"))


def test_text_logs_by_default_and_the_access_log_can_be_turned_off(tmp_path: Path) -> None:
    log = tmp_path / "text.log"
    with flowml_server_popen(f"sqlite:///{tmp_path / 't.db'}", str(tmp_path / "a"), log=log) as (url, _):
        httpx.get(f"{url}{API}/experiments/get?experiment_id=0", headers={"X-Request-ID": "plain-1"})
        text = _wait_for(log, "[plain-1]")
    line = next(line for line in text.splitlines() if "[plain-1]" in line)
    assert re.search(
        rf"INFO flowml\.server\.access \[plain-1\] GET {API}/experiments/get 200 [\d.]+ms$", line
    )
    assert not text.lstrip().startswith("{")

    quiet = tmp_path / "quiet.log"
    with flowml_server_popen(
        f"sqlite:///{tmp_path / 'q.db'}", str(tmp_path / "b"), "--no-access-log", log=quiet
    ) as (url, _):
        got = httpx.get(f"{url}{API}/experiments/get?experiment_id=0", headers={"X-Request-ID": "quiet-1"})
        assert got.headers["x-request-id"] == "quiet-1"  # the id is still returned
        time.sleep(0.5)
        assert "quiet-1" not in quiet.read_text()
        assert "Uvicorn running" in quiet.read_text()


def test_an_unexpected_error_still_carries_the_request_id(tmp_path: Path) -> None:
    """The middleware sits outside Starlette's error middleware: the 500 has the header, and the
    error handler's log record has the id."""
    app = create_app(
        ServerSettings(
            backend_store_uri=f"sqlite:///{tmp_path / 'e.db'}",
            artifacts_destination=str(tmp_path),
            allowed_hosts=["*"],
        )
    )

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaput")

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    handler.addFilter(RequestIdFilter())
    errors = logging.getLogger("flowml.server.errors")
    errors.addHandler(handler)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://flowml") as client:
            return await client.get("/boom", headers={"X-Request-ID": "boom-1"})

    try:
        response = asyncio.run(call())
    finally:
        errors.removeHandler(handler)
    assert response.status_code == 500 and response.json()["error_code"] == "INTERNAL_ERROR"
    assert response.headers["x-request-id"] == "boom-1"
    logged = [r for r in records if r.getMessage() == "unhandled error"]
    assert [getattr(r, "request_id", None) for r in logged] == ["boom-1"]
    assert logged[0].exc_info is not None
