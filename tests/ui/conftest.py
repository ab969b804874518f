"""Fixtures for the UI tests: a real server with the UI mounted, and headless Debian Chromium."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from tests.fixtures.server import free_port, wait_healthy

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def serve_ui(store_uri: str, artifacts_destination: str, **settings: Any) -> Iterator[str]:
    """Like ``tests.fixtures.server.serve_in_thread`` but with the UI (``flowml.ui.build_app``)."""
    import uvicorn

    from flowml.server import ServerSettings
    from flowml.ui import build_app

    port = free_port()
    app = build_app(
        ServerSettings(backend_store_uri=store_uri, artifacts_destination=artifacts_destination, **settings)
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-ui-{port}", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, timeout=30)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
