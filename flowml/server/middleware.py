"""Pure-ASGI guards (cheap: no per-request task or body copy).

* Host allow-list: a request whose Host header is not allowed gets 403 (DNS rebinding).
* JSON-only writes: POST/PATCH/DELETE under /api or /ajax-api with a body must be
  ``application/json`` (blocks CSRF via ``text/plain`` forms); artifact uploads (PUT) are raw bytes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["GuardMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON_METHODS = {b"POST", b"PATCH"}


async def _reject(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error_code": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.any_host = "*" in allowed_hosts
        self.allowed = {h.lower() for h in allowed_hosts}

    def _host_ok(self, headers: dict[bytes, bytes]) -> bool:
        if self.any_host:
            return True
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if host.startswith("["):
            name = host.split("]")[0] + "]"
        else:
            name = host.rsplit(":", 1)[0] if ":" in host else host
        return name in self.allowed or host in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not self._host_ok(headers):
            await _reject(send, 403, "PERMISSION_DENIED", "Host not allowed (see --allowed-hosts)")
            return
        method = scope["method"].encode()
        path: str = scope["path"]
        if method in _JSON_METHODS and path.startswith(("/api/", "/ajax-api/")):
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if ctype != b"application/json":
                await _reject(
                    send,
                    400,
                    "INVALID_PARAMETER_VALUE",
                    "Bad Request. Content-Type must be one of ['application/json']",
                )
                return
        await self.app(scope, receive, send)
