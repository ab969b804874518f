"""Fixtures for project tests: a fresh SQLite tracking store per test and project directories on disk.

Flow runs use the session's real Prefect server (``tests.fixtures.prefect_server``) with the heartbeat join
off, so an in-process project run costs well under a second of Prefect overhead.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WINE = REPO / "flows" / "wine_project"


def _reset_flowml() -> None:
    from flowml.settings import get_settings
    from flowml.tracking.fluent import _reset_for_tests

    _reset_for_tests()
    get_settings.cache_clear()


@pytest.fixture
def tracking(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite store + artifact root in FLOWML_*; cwd is a scratch directory."""
    for name in list(os.environ):
        if name.startswith(("FLOWML_", "MLFLOW_")):
            monkeypatch.delenv(name)
    uri = f"sqlite:///{tmp_path / 'flowml.db'}"
    monkeypatch.setenv("FLOWML_TRACKING_URI", uri)
    monkeypatch.setenv("FLOWML_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("FLOWML_PROJECTS_CACHE", str(tmp_path / "project-cache"))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    _reset_flowml()
    yield uri
    _reset_flowml()


MakeProject = Callable[..., Path]


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """Write a project directory: ``make_project(mlproject_text, **files)`` -> its path."""
    counter = iter(range(1000))

    def make(mlproject: str | None = None, name: str | None = None, **files: str) -> Path:
        root = tmp_path / (name or f"proj{next(counter)}")
        root.mkdir(parents=True)
        if mlproject is not None:
            (root / "MLproject").write_text(textwrap.dedent(mlproject))
        for file_name, text in files.items():
            (root / file_name.replace("__", ".")).write_text(textwrap.dedent(text))
        return root

    return make
