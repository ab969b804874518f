"""Time from ``transition_model_version_stage(..., "Production")`` to the first successful prediction.

    .venv/bin/python benchmarks/deploy/transition_to_prediction.py [--mode embedded|prefect|both] [--reps N]

Each repetition: a fresh store, BentoML home and deployments dir in a temp dir; a wine classifier is
trained and registered; the clock starts right before the transition call and stops when the live
endpoint's ``/invocations`` first answers 200. ``embedded``: the in-process dispatcher runs the pipeline in
a background process. ``prefect``: a real ``prefect server start`` (one for all reps), ``flowml deploy
setup``, then ``flowml deploy worker`` + ``flowml deploy dispatch`` processes; the event goes through an
automation to a flow run. Prints one JSON object (per-rep seconds and the pipeline's own step timings).
Target (issue 9): <= 30 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def _configure(root: Path) -> None:
    from flowml.client import clear_backend_cache
    from flowml.settings import get_settings

    os.environ.update(
        FLOWML_TRACKING_URI=f"sqlite:///{root / 'flowml.db'}", FLOWML_ARTIFACT_ROOT=str(root / "artifacts"),
        FLOWML_DEPLOYMENTS_DIR=str(root / "deployments"), BENTOML_HOME=str(root / "bentoml"),
        BENTOML_DO_NOT_TRACK="true", PYTHONPATH=str(REPO),
    )  # fmt: skip
    get_settings.cache_clear()
    clear_backend_cache()


def _register(name: str) -> tuple[str, Any]:
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression

    import flowml
    import flowml.sklearn
    from flowml.models import infer_signature

    x, y = load_wine(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=5000).fit(x, y)
    with flowml.start_run():
        info = flowml.sklearn.log_model(
            model, name="model", signature=infer_signature(x, model.predict(x)), input_example=x.head(3)
        )
    return str(flowml.register_model(info.model_uri, name).version), x.head(3)


def _first_prediction(
    name: str, version: str, x: Any, started: float, timeout: float = 180
) -> dict[str, Any]:
    from flowml.deploy.records import records

    payload = {"dataframe_split": x.to_dict(orient="split")}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rec in records().list(name=name, max_results=5):
            if rec.version == version and rec.status == "FAILED":
                raise RuntimeError(rec.error)
            if rec.version == version and rec.endpoint_url:
                with contextlib.suppress(httpx.HTTPError):
                    resp = httpx.post(f"{rec.endpoint_url}/invocations", json=payload, timeout=10)
                    if resp.status_code == 200:
                        seconds = round(time.perf_counter() - started, 2)
                        return {
                            "seconds": seconds,
                            "steps": rec.details["timings"],
                            "flow_run_id": rec.flow_run_id,
                        }
        time.sleep(0.05)
    raise TimeoutError("no prediction")


@contextlib.contextmanager
def _proc(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, *args], stdout=fh, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
    try:
        yield
    finally:
        for sig, wait in ((signal.SIGINT, 10), (signal.SIGKILL, 5)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
                break


def _stop_all(name: str) -> None:
    from flowml.deploy.targets import LocalTarget

    LocalTarget().stop(name)


def run_embedded(rep: int, root: Path) -> dict[str, Any]:
    from flowml.client import FlowmlClient
    from flowml.deploy.embedded import start_embedded

    _configure(root)
    name = f"bench-{rep}"
    version, x = _register(name)
    dispatcher, deployer = start_embedded(FlowmlClient())
    try:
        started = time.perf_counter()
        FlowmlClient().transition_model_version_stage(name, version, "Production")
        return _first_prediction(name, version, x, started)
    finally:
        dispatcher.stop()
        deployer.terminate()
        _stop_all(name)


def run_prefect(rep: int, root: Path, api_url: str) -> dict[str, Any]:
    from flowml.client import FlowmlClient
    from flowml.deploy.setup import setup
    from tests.fixtures.prefect_server import prefect_env

    _configure(root)
    name = f"bench-{rep}"
    version, x = _register(name)
    os.environ["PREFECT_API_URL"] = api_url
    setup()
    env = prefect_env(root / "prefect-client", api_url)
    cli = ["-m", "flowml.cli_deploy"]
    try:
        with _proc([*cli, "worker"], root / "worker.log", env), \
             _proc([*cli, "dispatch", "--poll-interval", "0.2"], root / "dispatch.log", env):  # fmt: skip
            time.sleep(4)  # worker registered and polling
            started = time.perf_counter()
            FlowmlClient().transition_model_version_stage(name, version, "Production")
            return _first_prediction(name, version, x, started)
    finally:
        _stop_all(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["embedded", "prefect", "both"], default="both")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    out: dict[str, Any] = {"target_seconds": 30}
    with tempfile.TemporaryDirectory(prefix="flowml-bench-deploy-") as tmp:
        if args.mode in ("embedded", "both"):
            reps = [run_embedded(i, Path(tmp) / f"e{i}") for i in range(args.reps)]
            out["embedded"] = {"median_s": statistics.median(r["seconds"] for r in reps), "reps": reps}
        if args.mode in ("prefect", "both"):
            from tests.fixtures.prefect_server import prefect_server_process

            with prefect_server_process(Path(tmp) / "prefect-home") as api_url:
                reps = [run_prefect(i, Path(tmp) / f"p{i}", api_url) for i in range(args.reps)]
            os.environ.pop("PREFECT_API_URL", None)
            out["prefect"] = {"median_s": statistics.median(r["seconds"] for r in reps), "reps": reps}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
