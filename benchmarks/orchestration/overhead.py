"""What ``@flowml.flow`` / ``@flowml.task`` add to a Prefect flow run and task run, on the SQL store.

Usage (a Prefect server is needed; the heartbeat join is turned off so it does not dominate):

    PREFECT_API_URL=http://127.0.0.1:4200/api .venv/bin/python benchmarks/orchestration/overhead.py

Measures, interleaving plain and decorated so both see the same machine load (medians; a fresh SQLite file):

* ``flow``: wall time of one call of an empty flow, plain ``prefect.flow`` vs ``@flowml.flow``;
* ``task``: wall time of one inline task call inside a flow, plain ``prefect.task`` vs ``@flowml.task``
  (child run: create run, log params, log duration, set terminated);
* ``task_tracking_only``: the tracking wrapper alone (``task.fn(x)`` under an active run, no Prefect engine),
  which is the part of the task overhead flowml controls.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def _time(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flows", type=int, default=30, help="flow runs per variant")
    parser.add_argument("--tasks", type=int, default=200, help="task runs per variant")
    args = parser.parse_args()
    if not os.environ.get("PREFECT_API_URL"):
        sys.exit("set PREFECT_API_URL to a running Prefect server (prefect server start)")
    work = tempfile.mkdtemp(prefix="flowml-orch-bench-")
    os.environ["FLOWML_TRACKING_URI"] = f"sqlite:///{work}/flowml.db"
    os.environ["FLOWML_ARTIFACT_ROOT"] = f"{work}/artifacts"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    import prefect
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    import flowml
    from flowml.orchestration import flow, task

    def body(x: int, name: str = "a") -> int:
        return x + 1

    plain_task = prefect.task(body)
    tracked_task = task(body)

    @prefect.flow
    def plain_flow(n: int = 1) -> int:
        return n

    @flow(experiment="bench")
    def tracked_flow(n: int = 1) -> int:
        return n

    task_times: dict[str, list[float]] = {"plain": [], "flowml": []}

    @prefect.flow
    def host_plain() -> None:
        for i in range(args.tasks):
            task_times["plain"].append(_time(lambda i=i: plain_task(i)))

    @flow(experiment="bench")
    def host_tracked() -> None:
        for i in range(args.tasks):
            task_times["flowml"].append(_time(lambda i=i: tracked_task(i)))

    flow_times: dict[str, list[float]] = {"plain": [], "flowml": []}
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        plain_flow(), tracked_flow()  # warm-up: imports, flow registration, experiment creation
        host_plain(), host_tracked()
        task_times = {"plain": [], "flowml": []}
        for _ in range(args.flows):
            flow_times["plain"].append(_time(plain_flow))
            flow_times["flowml"].append(_time(tracked_flow))
        for _ in range(2):
            host_plain()
            host_tracked()

    raw = tracked_task.fn
    tracking_only: list[float] = []
    with flowml.start_run():
        for i in range(args.tasks):
            tracking_only.append(_time(lambda i=i: raw(i)) - _time(lambda i=i: body(i)))

    result = {
        "benchmark": "orchestration_overhead",
        "python": platform.python_version(),
        "prefect": prefect.__version__,
        "cpus": os.cpu_count(),
        "store": "sqlite (file, WAL)",
        "flow_runs": args.flows,
        "task_runs": len(task_times["flowml"]),
        "flow_plain_ms": _median_ms(flow_times["plain"]),
        "flow_flowml_ms": _median_ms(flow_times["flowml"]),
        "flow_added_ms": round(_median_ms(flow_times["flowml"]) - _median_ms(flow_times["plain"]), 3),
        "task_plain_ms": _median_ms(task_times["plain"]),
        "task_flowml_ms": _median_ms(task_times["flowml"]),
        "task_added_ms": round(_median_ms(task_times["flowml"]) - _median_ms(task_times["plain"]), 3),
        "task_tracking_only_ms": _median_ms(tracking_only),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
