"""Per-request cost of ``flowml.server.observe.ObserveMiddleware`` (request id, Prometheus request
metrics, access log), measured on the ASGI call itself: no sockets, no HTTP parsing, no routing.

The inner app stands in for FastAPI: it sets ``scope["route"]`` like the router does and sends a
small 200 response. Variants, interleaved round by round (medians reported):

* ``bare``: the inner app alone;
* ``metrics``: the middleware with the access log off (``--no-access-log``);
* ``metrics+access-text`` / ``metrics+access-json``: access lines formatted and written to /dev/null.

``--multiprocess`` measures prometheus_client's multiprocess mode (what ``--workers N`` uses): the
environment variable is set before prometheus_client is imported.

    .venv/bin/python benchmarks/server/observe_overhead.py [--multiprocess]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import tempfile
import time
from typing import Any


class _Route:
    path_format = "/runs/log-batch"


async def _inner(scope: Any, receive: Any, send: Any) -> None:
    scope["route"] = _Route
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/api/2.0/mlflow/runs/log-batch",
        "headers": [
            (b"host", b"127.0.0.1:5000"),
            (b"user-agent", b"python-httpx/0.28.1"),
            (b"accept", b"*/*"),
            (b"accept-encoding", b"gzip, deflate"),
            (b"connection", b"keep-alive"),
            (b"content-type", b"application/json"),
            (b"content-length", b"6000"),
        ],
        "client": ("127.0.0.1", 50000),
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(_message: Any) -> None:
    return None


async def _per_request_us(app: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await app(_scope(), _receive, _send)
    return (time.perf_counter() - start) / n * 1e6


def _access_handler(fmt: str) -> logging.Handler:
    from flowml.server.logs import TEXT_FORMAT, JsonFormatter, RequestIdFilter

    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives for the whole run
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RequestIdFilter())
    return handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--multiprocess", action="store_true")
    args = parser.parse_args()
    if args.multiprocess:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="flowml-bench-metrics-")

    from flowml.client.local import SqlBackend
    from flowml.server.logs import ACCESS_LOGGER
    from flowml.server.metrics import ServerMetrics
    from flowml.server.observe import ObserveMiddleware

    backend = SqlBackend("sqlite://", "/tmp")  # never opened: the request path does not touch it
    metrics = ServerMetrics(backend)
    access = logging.getLogger(ACCESS_LOGGER)
    access.propagate = False
    access.setLevel(logging.INFO)
    handlers = {"text": _access_handler("text"), "json": _access_handler("json")}
    variants: dict[str, tuple[Any, str | None]] = {
        "bare": (_inner, None),
        "metrics": (ObserveMiddleware(_inner, metrics, access_log=False), None),
        "metrics+access-text": (ObserveMiddleware(_inner, metrics, access_log=True), "text"),
        "metrics+access-json": (ObserveMiddleware(_inner, metrics, access_log=True), "json"),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}

    async def run() -> None:
        for app, _ in variants.values():  # warm up every path once
            await _per_request_us(app, 1000)
        for _ in range(args.rounds):
            for name, (app, fmt) in variants.items():
                access.handlers = [handlers[fmt]] if fmt else []
                samples[name].append(await _per_request_us(app, args.requests))

    asyncio.run(run())
    bare = statistics.median(samples["bare"])
    print(
        json.dumps(
            {
                "multiprocess": metrics.multiprocess,
                "load_1min": os.getloadavg()[0],
                "requests_per_round": args.requests,
                "rounds": args.rounds,
                "median_us_per_request": {k: round(statistics.median(v), 2) for k, v in samples.items()},
                "overhead_us": {
                    k: round(statistics.median(v) - bare, 2) for k, v in samples.items() if k != "bare"
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
