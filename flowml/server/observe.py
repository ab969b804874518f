"""Per-request observability: request id, Prometheus request metrics and the access log.

:class:`ObserveMiddleware` is pure ASGI (no per-request task, no body copy) and wraps the *whole*
app, outside Starlette's ``ServerErrorMiddleware`` (:class:`ObservedFastAPI` puts it there), so a
500 response carries ``X-Request-ID`` too and the error handler's log record has the request id.

Per request it: takes the caller's ``X-Request-ID`` when it is sane, else makes one; sets
:data:`flowml.server.logs.REQUEST_ID` while the app runs; adds ``X-Request-ID`` to the response;
then records the request in :class:`~flowml.server.metrics.ServerMetrics` by route template and
writes one access line (method, route, path, status, duration) on ``flowml.server.access``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI

from flowml.server.logs import ACCESS_LOGGER, REQUEST_ID, request_id_from_header
from flowml.server.metrics import UNMATCHED, ServerMetrics

__all__ = ["ObserveMiddleware", "ObservedFastAPI", "route_template"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Where routers are mounted (``app.py``); FastAPI's route objects carry the path without it.
_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/2.0/mlflow-artifacts", "/api/flowml")
#: A request that ended without a response (the client went away, or it was cancelled).
NO_RESPONSE = 499


def _with_prefix(path: str, template: str) -> str:
    for prefix in _PREFIXES:
        if path.startswith(prefix) and path[len(prefix) : len(prefix) + 1] == "/":
            return template if template.startswith(prefix + "/") else prefix + template
    return template


def route_template(scope: Scope, endpoints: dict[Any, str] | None = None) -> str | None:
    """The matched route's path template with its mount prefix, or ``None`` when nothing matched.

    ``endpoints`` maps endpoint callables to templates, for plain Starlette routes (the UI's),
    which do not put themselves in ``scope["route"]``.
    """
    template = getattr(scope.get("route"), "path_format", None)
    if template is None:
        endpoint = scope.get("endpoint")
        template = None if endpoint is None or endpoints is None else endpoints.get(endpoint)
        if template is None:
            return None
    return _with_prefix(scope["path"], template)


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, metrics: ServerMetrics, *, access_log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.access = logging.getLogger(ACCESS_LOGGER) if access_log else None
        self._endpoints: dict[Any, str] | None = None

    def _endpoint_templates(self, scope: Scope) -> dict[Any, str]:
        if self._endpoints is None:
            found: dict[Any, str] = {}
            for route in getattr(scope.get("app"), "routes", ()):
                endpoint, template = getattr(route, "endpoint", None), getattr(route, "path_format", None)
                if endpoint is not None and isinstance(template, str):
                    found.setdefault(endpoint, template)
            self._endpoints = found
        return self._endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value
                break
        request_id = request_id_from_header(incoming)
        id_header = (b"x-request-id", request_id.encode("ascii"))
        status = 0

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        token = REQUEST_ID.set(request_id)
        self.metrics.started()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_observed)
        except Exception:
            status = status or 500
            raise
        finally:
            try:
                self._record(scope, status or NO_RESPONSE, time.perf_counter() - start)
            finally:
                REQUEST_ID.reset(token)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        route = route_template(scope, None)
        if route is None and "endpoint" in scope:
            route = route_template(scope, self._endpoint_templates(scope))
        route = route or UNMATCHED
        self.metrics.observe(method, route, status, seconds)
        access = self.access
        if access is not None and access.isEnabledFor(logging.INFO):
            self._log_access(access, scope, method, route, status, seconds)

    @staticmethod
    def _log_access(
        access: logging.Logger, scope: Scope, method: str, route: str, status: int, seconds: float
    ) -> None:
        client = scope.get("client")
        extra = {
            "method": method,
            "route": route,
            "path": scope["path"],
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": client[0] if client else None,
        }
        # makeRecord + handle: what .info() does, minus its walk up the stack for the caller's
        # file and line (always this function; a tenth of the access line's cost).
        record = access.makeRecord(
            access.name, logging.INFO, __file__, 0, "%s %s %d %.1fms",
            (method, route, status, seconds * 1000), None, extra=extra,
        )  # fmt: skip
        access.handle(record)


class ObservedFastAPI(FastAPI):
    """FastAPI with :class:`ObserveMiddleware` outermost, then the pure-ASGI layers of ``state.front``
    (outermost first; each called with the app it wraps), then Starlette's own stack. Needs
    ``state.metrics`` and ``state.settings``."""

    def build_middleware_stack(self) -> Any:
        app = super().build_middleware_stack()
        for layer in reversed(getattr(self.state, "front", ())):
            app = layer(app)
        return ObserveMiddleware(
            app,
            self.state.metrics,
            access_log=self.state.settings.access_log,
        )
