"""Deployment fixtures: a store with trained wine classifiers registered, private deployment and Bento
directories, and a guarantee that every deployment started in a test is stopped (by process group)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def _reset() -> None:
    from flowml.client import clear_backend_cache
    from flowml.settings import get_settings
    from flowml.tracking.fluent import _reset_for_tests

    _reset_for_tests()
    get_settings.cache_clear()
    clear_backend_cache()


@dataclass
class DeployEnv:
    root: Path
    x: Any  # feature frame
    register: Callable[..., str]  # register(name, kind="good"|"broken", C=1.0) -> version

    def local_predict(self, name: str, version: str) -> list[Any]:
        from flowml.pyfunc import load_model
        from flowml.serving import to_jsonable

        result: list[Any] = to_jsonable(load_model(f"models:/{name}/{version}").predict(self.x.head(5)))
        return result


@pytest.fixture
def deploy_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[DeployEnv]:
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import flowml
    import flowml.pyfunc
    import flowml.sklearn
    from flowml.models import infer_signature
    from tests.deploy.model_classes import Broken

    for name in list(os.environ):
        if name.startswith(("FLOWML_", "MLFLOW_", "BENTOML_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FLOWML_TRACKING_URI", f"sqlite:///{tmp_path / 'flowml.db'}")
    monkeypatch.setenv("FLOWML_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("FLOWML_DEPLOYMENTS_DIR", str(tmp_path / "deployments"))
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    monkeypatch.setenv("BENTOML_DO_NOT_TRACK", "true")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    _reset()
    data = load_wine(as_frame=True)
    x = data.data.rename(columns=lambda c: c.replace("/", "_"))
    y = data.target

    def register(name: str, kind: str = "good", C: float = 1.0) -> str:  # noqa: N803
        with flowml.start_run():
            if kind == "broken":
                sig = infer_signature(x, y)
                info = flowml.pyfunc.log_model(
                    name="model", python_model=Broken(), signature=sig, input_example=x.head(3)
                )
            else:
                model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500)).fit(x, y)
                flowml.log_metric("accuracy", float(model.score(x, y)))
                info = flowml.sklearn.log_model(
                    model,
                    name="model",
                    signature=infer_signature(x, model.predict(x)),
                    input_example=x.head(3),
                )
        return str(flowml.register_model(info.model_uri, name).version)

    try:
        yield DeployEnv(tmp_path, x, register)
    finally:
        from flowml.deploy.targets import LocalTarget

        target = LocalTarget(tmp_path / "deployments")
        for state in target.states():
            target.stop(state["name"])
        _reset()
