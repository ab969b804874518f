"""Fluent log_metric throughput: N x log_metric("m", float(i), step=i) inside `with start_run()`.

Timed from the first log_metric call until the with-block's end_run has returned, so a
buffering implementation pays for its flush.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import _common

DEFAULT_N = {"mlflow": 2_000, "flowml": 100_000}


def workload(impl: str, args: argparse.Namespace) -> dict[str, Any]:
    mlflow = _common.load(impl)
    n = args.n or DEFAULT_N[impl]
    with mlflow.start_run():  # store and run creation are not timed
        start = time.perf_counter()
        for i in range(n):
            mlflow.log_metric("m", float(i), step=i)
    seconds = time.perf_counter() - start  # end_run (and any flush) has returned
    return {"value": n / seconds, "n": n, "seconds": seconds}


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--n", type=int, default=0, help="calls per repetition (default: 2000 mlflow, 100000 flowml)"
    )


if __name__ == "__main__":
    _common.main("fluent_log_metric", "values/s", workload, add_args)
