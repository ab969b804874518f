"""client.log_batch throughput: B batches of 1,000 metrics (10 keys x 100 steps) into one run."""

from __future__ import annotations

import argparse
import time
from typing import Any

import _common


def workload(impl: str, args: argparse.Namespace) -> dict[str, Any]:
    client = _common.client_for(impl, _common.tracking_uri(impl))
    metric = _common.metric_class(impl)
    run_id = client.create_run(experiment_id="0").info.run_id
    now = int(time.time() * 1000)
    batches = [
        [metric(f"k{k}", float(b * 100 + s), now, b * 100 + s) for k in range(10) for s in range(100)]
        for b in range(args.batches)
    ]
    with _common.Timer() as timer:
        for batch in batches:
            client.log_batch(run_id, metrics=batch)
    values = sum(len(b) for b in batches)
    client.set_terminated(run_id)
    return {"value": values / timer.seconds, "values": values, "seconds": timer.seconds}


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batches", type=int, default=50)


if __name__ == "__main__":
    _common.main("log_batch", "values/s", workload, add_args)
