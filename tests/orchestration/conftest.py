"""Fixtures for the pipeline-decorator tests: a fresh SQLite store per test, flows on the session's Prefect
server (``tests.fixtures.prefect_server``) with the heartbeat join off."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def _reset() -> None:
    from flowml.orchestration._context import clear_client_cache
    from flowml.settings import get_settings
    from flowml.tracking.fluent import _reset_for_tests

    _reset_for_tests()
    clear_client_cache()
    get_settings.cache_clear()


@pytest.fixture
def tracking(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite store and artifact root in FLOWML_*; cwd is a scratch directory."""
    for name in list(os.environ):
        if name.startswith(("FLOWML_", "MLFLOW_")):
            monkeypatch.delenv(name)
    uri = f"sqlite:///{tmp_path / 'flowml.db'}"
    monkeypatch.setenv("FLOWML_TRACKING_URI", uri)
    monkeypatch.setenv("FLOWML_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    _reset()
    yield uri
    _reset()


@pytest.fixture
def pipeline_env(tracking: str, prefect_api: str) -> str:
    """Tracking store + the session Prefect server: what every flow-running test needs."""
    return tracking
