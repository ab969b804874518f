"""Shared plumbing for the benchmark scripts: one code path for MLflow and flowml.

Every repetition runs in a fresh child process with a fresh temp dir holding a new SQLite
file, configured through the environment only (MLFLOW_TRACKING_URI or FLOWML_TRACKING_URI,
plus the artifact root) - the way a user's script gets it. The parent prints one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

IMPLS = ("mlflow", "flowml")
REPO = Path(__file__).resolve().parent.parent


def child_env(impl: str, workdir: str) -> dict[str, str]:
    """Environment for one repetition: a fresh SQLite file and artifact root in workdir.

    The child's cwd is workdir too, so MLflow's default ./mlruns artifact root lands there.
    """
    env = dict(os.environ)
    uri = f"sqlite:///{workdir}/{impl}.db"
    artifacts = f"{workdir}/artifacts"
    if impl == "mlflow":
        env["MLFLOW_TRACKING_URI"] = uri
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"  # no network calls from a benchmark
    elif impl == "flowml":
        env["FLOWML_TRACKING_URI"] = uri
        env["FLOWML_ARTIFACT_ROOT"] = artifacts
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def tracking_uri(impl: str) -> str:
    return os.environ["MLFLOW_TRACKING_URI" if impl == "mlflow" else "FLOWML_TRACKING_URI"]


def load(impl: str) -> ModuleType:
    """`import mlflow` or `import flowml` - used as `mlflow` either way."""
    return importlib.import_module(impl)


def client_for(impl: str, uri: str) -> Any:
    """MlflowClient(uri) or FlowmlClient(uri)."""
    if impl == "mlflow":
        return importlib.import_module("mlflow.tracking").MlflowClient(uri)
    return importlib.import_module("flowml.client").FlowmlClient(uri)


def metric_class(impl: str) -> Any:
    return importlib.import_module(f"{impl}.entities").Metric


def impl_version(impl: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    if impl == "sqlite3":
        import sqlite3

        return sqlite3.sqlite_version
    try:
        return version(impl)
    except PackageNotFoundError:
        return "source"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def run_child(script: str, impl: str, extra: list[str]) -> dict[str, Any]:
    """Run `script --child` once in a fresh temp dir; return its JSON result."""
    with tempfile.TemporaryDirectory(prefix="flowml-bench-") as workdir:
        proc = subprocess.run(
            [sys.executable, script, "--child", "--impl", impl, *extra],
            cwd=workdir,
            env=child_env(impl, workdir),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{Path(script).name} --impl {impl} failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(
    name: str,
    unit: str,
    workload: Callable[[str, argparse.Namespace], dict[str, Any]],
    add_args: Callable[[argparse.ArgumentParser], None] = lambda p: None,
    default_reps: int = 5,
    impls: tuple[str, ...] = IMPLS,
) -> None:
    """CLI shared by all scripts.

    Parent mode runs --reps child processes and prints
    {"workload", "impl", "unit", "median", "reps", ...}. A workload returns
    {"value": <figure in unit>, ...details}.
    """
    parser = argparse.ArgumentParser(description=f"benchmark: {name}")
    parser.add_argument("--impl", choices=impls, default=impls[0])
    parser.add_argument("--reps", type=int, default=default_reps)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    add_args(parser)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(workload(args.impl, args)))
        return

    script = os.path.abspath(sys.argv[0])
    extra = [a for a in sys.argv[1:] if a not in ("--child",)]
    extra = _drop_option(_drop_option(extra, "--impl"), "--reps")
    results = [run_child(script, args.impl, extra) for _ in range(args.reps)]
    values = [r["value"] for r in results]
    out = {
        "workload": name,
        "impl": args.impl,
        "version": impl_version(args.impl),
        "args": extra,
        "unit": unit,
        "median": statistics.median(values),
        "reps": values,
        "details": sorted(results, key=lambda r: r["value"])[len(results) // 2],
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    print(json.dumps(out))


def _drop_option(argv: list[str], opt: str) -> list[str]:
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == opt:
            skip = True
        elif not a.startswith(opt + "="):
            out.append(a)
    return out


class Timer:
    """`with Timer() as t: ...` then t.seconds (perf_counter wall time)."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
