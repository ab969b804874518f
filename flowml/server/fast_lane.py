"""A pure-ASGI lane for ``POST .../runs/log-batch``, the server's hot write route.

Clients log metrics many times a second, and on the event loop Starlette's error middleware,
FastAPI's routing (a regex per route tried) and its request/endpoint plumbing cost more CPU per
request than reading and checking the body. Every request the event loop spends CPU on delays the
group commit of the others, so log-batch goes around that stack: this layer sits inside
:class:`~flowml.server.observe.ObserveMiddleware` (request id, metrics, access log) and
:class:`~flowml.server.middleware.GuardMiddleware` (Host and Content-Type checks), reads the body,
parses it (``batch_body``), awaits the group commit and answers ``{}``, or the error JSON that
``errors.error_payload`` gives any other route. The FastAPI route stays for the OpenAPI schema and
for servers with ``--auth``, whose permission check is a FastAPI dependency: with auth on, this
lane is not installed.
"""

from __future__ import annotations

import orjson

from flowml.client.local import SqlBackend
from flowml.server.batch_body import parse_log_batch
from flowml.server.errors import error_payload
from flowml.server.middleware import ASGIApp, Receive, Scope, Send

__all__ = ["LogBatchLane"]

_JSON_HEADERS = [(b"content-type", b"application/json")]


class _Route:
    """What ``ObserveMiddleware`` reads from ``scope["route"]``: the route's template."""

    __slots__ = ("path_format",)

    def __init__(self, path_format: str) -> None:
        self.path_format = path_format


class LogBatchLane:
    def __init__(self, app: ASGIApp, backend: SqlBackend, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.backend = backend
        self.routes = {f"{prefix}/runs/log-batch": _Route(f"{prefix}/runs/log-batch") for prefix in prefixes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        body = await _read_body(receive)
        if body is None:  # the client went away mid-body
            return
        try:
            await self.backend.log_prepared_batch(parse_log_batch(body))
        except Exception as exc:  # noqa: BLE001 - every error becomes MLflow's error JSON
            status, payload = error_payload(exc)
            await _respond(send, status, orjson.dumps(payload))
            return
        await _respond(send, 200, b"{}")


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes) -> None:
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
