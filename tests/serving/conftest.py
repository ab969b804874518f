"""Serving fixtures: models logged to a fresh store, and real BentoML servers started on free ports.

One module-scoped environment (store, artifact root, BENTOML_HOME under tmp) is shared by the whole
module so the expensive parts — building a Bento, starting ``bentoml serve`` — happen once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        """Stop the whole process group (arbiter + workers) started for this server."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        # workers may outlive a killed arbiter: the group id is the arbiter's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def start_server(cmd: list[str], port: int, env: dict[str, str], log: Path, cwd: str) -> Server:
    fh = open(log, "wb")  # noqa: SIM115 - kept open for the life of the process
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
    )
    return Server(proc, f"http://127.0.0.1:{port}", log)


def wait_ready(server: Server, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"server exited with {server.proc.returncode}:\n{server.log.read_text()[-4000:]}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "/ping", timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"server not ready after {timeout}s:\n{server.log.read_text()[-4000:]}")


@dataclass
class ServingEnv:
    root: Path
    env: dict[str, str]
    bentoml_home: Path
    sk_uri: str  # runs:/ URI of the sklearn model
    xgb_uri: str  # runs:/ URI of the xgboost model
    registered: str
    version: str
    run_id: str
    iris: Any  # (X, y)
    frame: Any  # the xgboost model's input frame


def _reset() -> None:
    from flowml.settings import get_settings
    from flowml.tracking.fluent import _reset_for_tests

    _reset_for_tests()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def serving_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingEnv]:
    """Log an sklearn and an xgboost model (with signatures and input examples); register the first."""
    import numpy as np
    import pandas as pd
    import xgboost as xgb
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import flowml
    import flowml.sklearn
    import flowml.xgboost
    from flowml.client import FlowmlClient
    from flowml.models import infer_signature

    root = tmp_path_factory.mktemp("serving")
    (root / "artifacts").mkdir()
    values = {
        "FLOWML_TRACKING_URI": f"sqlite:///{root / 'flowml.db'}",
        "FLOWML_ARTIFACT_ROOT": str(root / "artifacts"),
        "BENTOML_HOME": str(root / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("FLOWML_", "MLFLOW_")):
                mp.delenv(name)
        for key, value in values.items():
            mp.setenv(key, value)
        _reset()
        data = load_iris(as_frame=True)
        x_iris = data.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
        y_iris = data.target
        sk = LogisticRegression(max_iter=500).fit(x_iris, y_iris)
        rng = np.random.default_rng(0)
        frame = pd.DataFrame(rng.normal(size=(300, 6)), columns=[f"f{i}" for i in range(6)])
        target = (frame.f0 + frame.f1 > 0).astype("int64")
        booster = xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(frame, target)
        with flowml.start_run() as run:
            sk_info = flowml.sklearn.log_model(
                sk,
                name="model",
                signature=infer_signature(x_iris, sk.predict(x_iris)),
                input_example=x_iris.head(3),
            )
            xgb_info = flowml.xgboost.log_model(
                booster,
                name="xgb",
                signature=infer_signature(frame, booster.predict(frame)),
                input_example=frame.head(2),
            )
        mv = flowml.register_model(sk_info.model_uri, "iris-clf")
        FlowmlClient().set_registered_model_alias("iris-clf", "champion", mv.version)
        env = {**os.environ, **values, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        yield ServingEnv(
            root,
            env,
            root / "bentoml",
            sk_info.model_uri,
            xgb_info.model_uri,
            "iris-clf",
            str(mv.version),
            run.info.run_id,
            (x_iris, y_iris),
            frame,
        )
        _reset()
