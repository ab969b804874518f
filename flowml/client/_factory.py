"""Pick the backend for a tracking URI: ``http(s)://`` → REST, anything else → the SQL store."""

from __future__ import annotations

import atexit
import importlib
import threading
from collections.abc import Mapping

from flowml.client.base import TrackingBackend
from flowml.exceptions import InvalidParameterValue

__all__ = ["BackendCache", "make_backend"]


def make_backend(
    uri: str,
    artifact_root: str,
    *,
    s3_endpoint_url: str | None = None,
    busy_timeout_ms: int = 30_000,
    headers: Mapping[str, str] | None = None,
) -> TrackingBackend:
    """A new backend for ``uri`` (no I/O until first use); ``headers`` go with every REST request."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme in ("http", "https"):
        try:
            rest = importlib.import_module("flowml.client.rest")
        except ImportError as exc:  # the REST backend ships with the server (issue 4)
            raise InvalidParameterValue(
                f"Tracking URI {uri!r} needs the REST client, which this build does not have yet"
            ) from exc
        backend: TrackingBackend = rest.RestBackend(uri, artifact_root, headers=headers)
        return backend
    if scheme.startswith("sqlite") or scheme.startswith("postgres"):
        from flowml.client.local import SqlBackend

        return SqlBackend(uri, artifact_root, busy_timeout_ms=busy_timeout_ms)
    raise InvalidParameterValue(
        f"Unsupported tracking URI {uri!r}: use sqlite:///path, postgresql+psycopg://..., or http(s)://"
    )


class BackendCache:
    """One backend (one engine/connection pool) per distinct configuration, shared by clients.

    Closed at interpreter exit (connections and HTTP sockets released, not left to the garbage collector);
    the hook is registered with the first backend, so it runs after the fluent API's own exit hooks
    (``atexit`` runs the last registered first), which end runs still open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._backends: dict[tuple[str, str, str | None, tuple[tuple[str, str], ...]], TrackingBackend] = {}
        self._exit_hook = False

    def get(
        self,
        uri: str,
        artifact_root: str,
        s3_endpoint_url: str | None,
        busy_timeout_ms: int,
        headers: Mapping[str, str] | None = None,
    ) -> TrackingBackend:
        key = (uri, artifact_root, s3_endpoint_url, tuple(sorted((headers or {}).items())))
        with self._lock:
            backend = self._backends.get(key)
            if backend is None:
                backend = make_backend(
                    uri,
                    artifact_root,
                    s3_endpoint_url=s3_endpoint_url,
                    busy_timeout_ms=busy_timeout_ms,
                    headers=headers,
                )
                self._backends[key] = backend
                if not self._exit_hook:
                    atexit.register(self.clear)
                    self._exit_hook = True
            return backend

    def clear(self) -> None:
        with self._lock:
            for backend in self._backends.values():
                backend.close()
            self._backends.clear()
