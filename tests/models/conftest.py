"""Model tests: a fresh SQLite store and local artifact root per test (kept to SQLite for speed)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _reset() -> None:
    from flowml.settings import get_settings
    from flowml.tracking.fluent import _reset_for_tests

    _reset_for_tests()
    get_settings.cache_clear()


@pytest.fixture
def models_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """FLOWML_* pointed at a fresh SQLite store + artifact root (as tests/conftest.py::flowml_env)."""
    for name in list(os.environ):
        if name.startswith(("FLOWML_", "MLFLOW_")):
            monkeypatch.delenv(name)
    uri = f"sqlite:///{tmp_path / 'flowml.db'}"
    root = tmp_path / "artifacts"
    root.mkdir()
    monkeypatch.setenv("FLOWML_TRACKING_URI", uri)
    monkeypatch.setenv("FLOWML_ARTIFACT_ROOT", str(root))
    monkeypatch.chdir(tmp_path)
    _reset()
    yield uri
    from flowml.models.autolog import autolog

    autolog(disable=True)
    from flowml.tracking.fluent import active_run, end_run

    while active_run() is not None:
        end_run()
    _reset()


@pytest.fixture
def iris() -> Any:
    import pandas as pd
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    x_data: pd.DataFrame = data.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    return x_data, data.target


@pytest.fixture
def binary() -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x_data = pd.DataFrame(
        {"a": rng.normal(size=200), "b": rng.normal(size=200), "c": rng.integers(0, 5, 200)}
    )
    y = (x_data["a"] + 0.5 * x_data["b"] > 0).astype("int64")
    return x_data, y
