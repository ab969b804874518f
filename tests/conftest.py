"""Shared fixtures: real SQLite files, a private PostgreSQL cluster, a loopback S3 server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.s3",
    "tests.fixtures.server",
    "tests.fixtures.prefect_server",
]

# Keep Prefect quiet and local in every test process (later issues start real servers).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _reset_flowml() -> None:
    from flowml.settings import get_settings
    from flowml.tracking.fluent import _reset_for_tests

    _reset_for_tests()
    get_settings.cache_clear()


@pytest.fixture
def artifact_root(tmp_path: Path) -> str:
    root = tmp_path / "artifacts"
    root.mkdir()
    return str(root)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty tracking store: a SQLite file, or a database in the private Postgres cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'flowml.db'}"
    uri: str = request.getfixturevalue("postgres_uri")
    return uri


@pytest.fixture
def flowml_env(
    monkeypatch: pytest.MonkeyPatch, store_uri: str, artifact_root: str, tmp_path: Path
) -> Iterator[str]:
    """Point FLOWML_* at a fresh store and artifact root; reset fluent state around the test."""
    for name in list(os.environ):
        if name.startswith(("FLOWML_", "MLFLOW_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLOWML_TRACKING_URI", store_uri)
    monkeypatch.setenv("FLOWML_ARTIFACT_ROOT", artifact_root)
    monkeypatch.chdir(tmp_path)
    _reset_flowml()
    yield store_uri
    from flowml.tracking.fluent import active_run, end_run

    while active_run() is not None:
        end_run()
    _reset_flowml()


@pytest.fixture(params=["local", "rest"])
def client(request: pytest.FixtureRequest, flowml_env: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The client under test, once in-process (SQL store) and once over REST to a live server.

    Combined with ``store_uri`` the contract suite runs on SQLite and PostgreSQL, both ways.
    """
    from flowml.client import FlowmlClient

    if request.param == "local":
        yield FlowmlClient(flowml_env)
        return
    from tests.fixtures.server import serve_in_thread

    dest = tmp_path / "server-artifacts"
    dest.mkdir()
    with serve_in_thread(flowml_env, str(dest)) as url:
        yield FlowmlClient(url)
