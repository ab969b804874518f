"""Whole-process time of the smallest tracked script on a fresh SQLite file.

    import mlflow            # or: import flowml as mlflow
    with mlflow.start_run():
        mlflow.log_metric("m", 1.0)

Timed from spawning the interpreter until it has exited (imports, schema creation, run,
end_run, interpreter shutdown - everything the user waits for).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

import _common

SCRIPT = """\
import {impl} as mlflow
with mlflow.start_run():
    mlflow.log_metric("m", 1.0)
"""


def workload(impl: str, args: argparse.Namespace) -> dict[str, Any]:
    # we are a child with a fresh temp dir as cwd and the tracking URI in the environment
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", SCRIPT.format(impl=impl)], check=True, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return {"value": seconds, "seconds": seconds}


if __name__ == "__main__":
    _common.main("minimal_script", "s", workload)
