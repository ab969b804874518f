"""Fixtures for the UI tests: a real server with the UI mounted, and headless Debian Chromium."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tests.fixtures.server import serve_in_thread

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
    """``tests.fixtures.server.serve_in_thread`` with the UI mounted (``flowml.ui.build_app``)."""
    from flowml.ui import build_app

    with serve_in_thread(store_uri, artifacts_destination, app_factory=build_app, **settings) as url:
        yield url
