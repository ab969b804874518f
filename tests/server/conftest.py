"""Shared server-test fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.server import serve_in_thread

#: The bootstrap admin of ``auth_server``.
ADMIN = ("admin", "admin-password")


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[str]:
    """A ``flowml server --auth`` (in a thread, real HTTP) on a fresh SQLite store; yields its URL."""
    with serve_in_thread(
        f"sqlite:///{tmp_path / 'auth.db'}",
        str(tmp_path / "artifacts"),
        auth=True,
        auth_admin_username=ADMIN[0],
        auth_admin_password=ADMIN[1],
    ) as url:
        yield url
