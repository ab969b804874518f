"""HTTP throughput of ``flowml server`` vs ``mlflow server`` on the same machine, with wrk.

Workloads (issue 4): runs/log-batch carrying 100 metrics at 8 connections; registry stage
transitions (1 connection, p50); runs/search over 10k runs (1 connection, p50). Each server gets a
fresh store (SQLite file, or a database in a private PostgreSQL cluster: ``--store postgres``)
holding the same 10k-run corpus, loaded in bulk before it starts (``_stores.py``).

Both servers run side by side and the repetitions interleave (A B, B A, A B, ...), so both see the
same machine load. Each server first gets ``--warmup`` seconds of the workload, not recorded (new
connections, plans, caches), and every repetition starts on a quiet machine (``settle``: the
database's analyze of the loaded corpus, or its background work after the other server's
repetition, would otherwise land in the next one's figures). Prints one JSON
object per (store, server, workload): medians over ``--repeats`` runs of ``--seconds`` each, with
the 1-min load average before each run, and CPU per request: of the server's processes
(``server_cpu_ms``) and of the whole machine (``machine_cpu_ms``: wrk, the database, the other
server idling), steadier than req/s across this VM's fast and slow phases.

    .venv/bin/python benchmarks/server/bench.py --impl flowml --impl mlflow
    .venv/bin/python benchmarks/server/bench.py --impl flowml --impl mlflow --store postgres
    .venv/bin/python benchmarks/server/bench.py --impl flowml --workload log-batch \
        --flowml-arg=--no-access-log
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
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
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stores import populate, postgres_cluster

HERE = Path(__file__).parent
API = "/api/2.0/mlflow"
WORKLOADS = {
    # name: (wrk script, connections)
    "log-batch": ("log_batch.lua", 8),
    "transition": ("transition.lua", 1),
    "search": ("search.lua", 1),
}
LABELS = {
    "log-batch": "log-batch 100 metrics, 8 conns",
    "transition": "transition-stage, 1 conn",
    "search": "runs/search {runs} runs (filter + order_by metric, 100), 1 conn",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of the live processes in process group ``pgid`` (a server and its workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # fields[0] is the state; pgrp, then utime/stime at 11/12
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    steal = values[7] if len(values) > 7 else 0
    return (sum(values[:8]) - idle - steal) / os.sysconf("SC_CLK_TCK")


def settle(limit: float = 60.0, window: float = 0.5, busy_share: float = 0.1) -> float:
    """Wait (at most ``limit`` s) until the machine is quiet: two ``window``-long spells in a row with
    less than ``busy_share`` of its cores busy. What runs then is background work left by what came
    before (PostgreSQL's analyze of a freshly loaded corpus, autovacuum or a checkpoint after the
    other server's repetition), which would otherwise land in whichever repetition comes next.
    Returns the seconds waited."""
    start = time.monotonic()
    cores, quiet = os.cpu_count() or 1, 0
    while quiet < 2 and time.monotonic() - start < limit:
        busy = machine_busy_seconds()
        time.sleep(window)
        quiet = quiet + 1 if machine_busy_seconds() - busy < busy_share * cores * window else 0
    return round(time.monotonic() - start, 1)


@contextlib.contextmanager
def server(
    impl: str, store_uri: str, root: Path, workers: int, extra: list[str]
) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWML_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    bindir = os.path.dirname(sys.executable)
    cmd = [os.path.join(bindir, impl), "server", "--backend-store-uri", store_uri]
    cmd += ["--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", str(workers), *extra]
    log = open(root / f"{impl}-server.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{impl} server exited: {(root / f'{impl}-server.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield url, proc.pid  # the server leads its own session: its pid is the process group
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def wrk(
    url: str, script: str, connections: int, seconds: int, env: dict[str, str], pgid: int
) -> dict[str, float]:
    load = os.getloadavg()[0]
    cpu, busy = group_cpu_seconds(pgid), machine_busy_seconds()
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",  # wrk's default (2 s) would drop MLflow's slow searches from the figures
            "60s",
            "-s",
            str(HERE / script),
            url,
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu, busy = group_cpu_seconds(pgid) - cpu, machine_busy_seconds() - busy
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p = dict(re.findall(r"(p\d+)=([\d.]+)ms", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    requests = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "rps": rps,
        "requests": requests,
        # CPU per request: the server's processes, and the whole machine (wrk, the database, ...)
        "server_cpu_ms": round(1000 * cpu / max(requests, 1), 3),
        "machine_cpu_ms": round(1000 * busy / max(requests, 1), 3),
        "p50_ms": float(p["p50"]),
        "p99_ms": float(p["p99"]),
        "errors": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": float(sum(int(n) for n in socket_errors.groups())) if socket_errors else 0.0,
        "load_1min": load,
    }


@dataclass
class Target:
    """One running server and what its workloads need."""

    url: str
    pgid: int
    env: dict[str, dict[str, str]]


def prepare(url: str, pgid: int, search_experiment: str) -> Target:
    """A run to log into, and a registered model whose version 1 both servers accept: the source is
    ``runs:/<run_id>/model`` with ``run_id`` set (MLflow refuses sources outside the run)."""
    c = httpx.Client(base_url=url + API, timeout=60)
    run_id = c.post("/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]["run_id"]
    c.post("/registered-models/create", json={"name": "bench-model"}).raise_for_status()
    version = c.post(
        "/model-versions/create",
        json={"name": "bench-model", "source": f"runs:/{run_id}/model", "run_id": run_id},
    )
    version.raise_for_status()
    assert version.json()["model_version"]["version"] == "1", version.text
    return Target(
        url,
        pgid,
        {
            "log-batch": {"RUN_ID": run_id},
            "transition": {"MODEL_NAME": "bench-model"},
            "search": {"EXPERIMENT_ID": search_experiment},
        },
    )


def median_of(results: list[dict[str, float]]) -> dict[str, float]:
    out = {k: statistics.median(r[k] for r in results) for k in results[0]}
    out["load_1min_min"] = min(r["load_1min"] for r in results)
    out["load_1min_max"] = max(r["load_1min"] for r in results)
    return out


def machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def run_store(store: str, args: argparse.Namespace) -> Iterator[dict[str, object]]:
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(postgres_cluster(not args.pg_fast)) if store == "postgres" else None
        targets: dict[str, Target] = {}
        for impl in args.impl:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{impl}-")))
            uri, exp_id = populate(impl, store, root, args.runs, cluster)
            extra = args.flowml_arg if impl == "flowml" else args.mlflow_arg
            url, pgid = stack.enter_context(server(impl, uri, root, args.workers, extra or []))
            targets[impl] = prepare(url, pgid, exp_id)
        for workload in args.workload or list(WORKLOADS):
            script, connections = WORKLOADS[workload]
            results: dict[str, list[dict[str, float]]] = {impl: [] for impl in args.impl}
            for impl in args.impl if args.warmup else ():  # not recorded; REP past the measured ones
                target = targets[impl]
                env = {**target.env[workload], "REP": str(args.repeats)}
                wrk(target.url, script, connections, args.warmup, env, target.pgid)
            for rep in range(args.repeats):
                order = args.impl if rep % 2 == 0 else list(reversed(args.impl))
                for impl in order:
                    target = targets[impl]
                    waited = settle()
                    env = {**target.env[workload], "REP": str(rep)}
                    result = wrk(target.url, script, connections, args.seconds, env, target.pgid)
                    results[impl].append({**result, "settled_s": waited})
            for impl in args.impl:
                yield {
                    "impl": impl,
                    "store": store,
                    "workers": args.workers,
                    "server_args": (args.flowml_arg if impl == "flowml" else args.mlflow_arg) or [],
                    "workload": LABELS[workload].format(runs=args.runs),
                    **median_of(results[impl]),
                    "reps": results[impl],
                    "machine": machine(),
                    "date": time.strftime("%Y-%m-%d %H:%M"),
                }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--impl", action="append", choices=["flowml", "mlflow"], required=True)
    parser.add_argument("--store", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--workload", action="append", choices=list(WORKLOADS))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--warmup", type=int, default=3, help="seconds of each workload per server before measuring (0: none)"
    )
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the search experiment")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--flowml-arg", action="append", help="extra `flowml server` argument (repeatable)")
    parser.add_argument("--mlflow-arg", action="append", help="extra `mlflow server` argument (repeatable)")
    parser.add_argument(
        "--pg-fast",
        action="store_true",
        help="PostgreSQL with fsync/synchronous_commit off (the test fixture's)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    for store in args.store or ["sqlite"]:
        for result in run_store(store, args):
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
