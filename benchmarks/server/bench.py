"""HTTP throughput of ``flowml server`` vs ``mlflow server`` on the same machine, with wrk.

Workloads (issue 4): runs/log-batch carrying 100 metrics at 8 connections; runs/search over 10k runs
(1 connection, p50); registry stage transitions (1 connection, p50). Each server gets a fresh SQLite
store; the 10k runs are loaded through each server's own REST API (log-batch), so both hold the same
data. Prints one JSON object per (server, workload); medians over --repeats runs of --seconds each.

    .venv/bin/python benchmarks/server/bench.py --impl flowml --impl mlflow
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

HERE = Path(__file__).parent
API = "/api/2.0/mlflow"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(impl: str, root: Path, workers: int) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWML_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    store = f"sqlite:///{root / 'store.db'}"
    bindir = os.path.dirname(sys.executable)
    if impl == "flowml":
        cmd = [os.path.join(bindir, "flowml"), "server", "--backend-store-uri", store]
    else:
        cmd = [os.path.join(bindir, "mlflow"), "server", "--backend-store-uri", store]
    cmd += [
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(
        cmd, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def wrk(url: str, script: str, connections: int, seconds: int, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "-s",
            str(HERE / script),
            url,
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p = dict(re.findall(r"(p\d+)=([\d.]+)ms", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": float(p["p50"]),
        "p99_ms": float(p["p99"]),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
    }


def populate(impl: str, root: Path, runs: int) -> str:
    """Bulk-load the search corpus into the store file before the server starts: the same data for
    both implementations (benchmarks/search/populate.py: 5 params, 5 metrics, 3 tags per run)."""
    sys.path.insert(0, str(HERE.parent / "search"))
    import populate as search_populate  # type: ignore[import-not-found]

    fill = (
        search_populate.populate_flowml_sqlite if impl == "flowml" else search_populate.populate_mlflow_sqlite
    )
    return str(fill(root / "store.db", runs)["experiment_id"])


def median_of(results: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", action="append", choices=["flowml", "mlflow"], required=True)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the search experiment")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    for impl in args.impl:
        with tempfile.TemporaryDirectory(prefix=f"bench-{impl}-") as tmp:
            exp_id = populate(impl, Path(tmp), args.runs)
            with server(impl, Path(tmp), args.workers) as url:
                for result in run_workloads(url, exp_id, args):
                    print(json.dumps({"impl": impl, **result}), flush=True)


def run_workloads(url: str, exp_id: str, args: argparse.Namespace) -> Iterator[dict[str, object]]:
    c = httpx.Client(base_url=url + API, timeout=60)
    run_id = c.post("/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]["run_id"]
    batch = [wrk(url, "log_batch.lua", 8, args.seconds, {"RUN_ID": run_id}) for _ in range(args.repeats)]
    yield {"workload": "log-batch 100 metrics, 8 conns", **median_of(batch)}
    c.post("/registered-models/create", json={"name": "bench-model"})
    c.post(
        "/model-versions/create", json={"name": "bench-model", "source": "mlflow-artifacts:/0/x/artifacts/m"}
    )
    trans = [
        wrk(url, "transition.lua", 1, args.seconds, {"MODEL_NAME": "bench-model"})
        for _ in range(args.repeats)
    ]
    yield {"workload": "transition-stage, 1 conn", **median_of(trans)}
    search = [wrk(url, "search.lua", 1, args.seconds, {"EXPERIMENT_ID": exp_id}) for _ in range(args.repeats)]
    yield {
        "workload": f"runs/search {args.runs} runs (filter + order_by metric, 100), 1 conn",
        **median_of(search),
    }


if __name__ == "__main__":
    main()
