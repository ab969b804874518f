"""Serving benchmark: `flowml models serve` vs `mlflow models serve --env-manager local`.

Same model, same sitting.

Measures, for a 1-row xgboost request to /invocations (``dataframe_split`` JSON):
- latency p50/p99 with 1 connection and throughput with 1 and 16 connections (``wrk`` + post_json.lua),
  ``--duration`` seconds each;
- cold start: process start → first ``GET /ping`` 200;
- the floor: bare ``predict()`` in-process (numpy and pandas) and a bare FastAPI endpoint under wrk.

Variants: flowml ``/invocations`` micro-batched (the default) and unbatched
(``FLOWML_SERVING_INVOCATIONS_BATCHING=off``), with 2 BentoML workers, and the typed ``/predict`` with
and without BentoML adaptive batching. The servers are interleaved: each round starts every server
once (one wrk run per connection count; the order is reversed every other round), and the figures are
medians over ``--runs`` rounds; cold start is the median of the rounds' starts. The CPU time of each
server's process tree per request (at 16 connections) is less sensitive to a shared machine's load than
req/s. Usage:
``.venv/bin/python benchmarks/serving/bench.py [--runs 3] [--duration 5] [--only mlflow,flowml]``.
Prints a markdown table and writes ``benchmarks/serving/results.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LUA = HERE / "post_json.lua"
BIN = Path(sys.executable).parent
FEATURES = 8


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_model(workdir: Path, trees: int) -> tuple[Path, Any]:
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    import flowml.xgboost
    from flowml.models import infer_signature

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(2000, FEATURES)), columns=[f"f{i}" for i in range(FEATURES)])
    target = (frame.f0 + frame.f1 * frame.f2 > 0).astype("int64")
    model = xgb.XGBClassifier(n_estimators=trees, max_depth=6).fit(frame, target)
    path = workdir / "xgb-model"
    flowml.xgboost.save_model(
        model, path, signature=infer_signature(frame, model.predict(frame)), input_example=frame.head(2)
    )
    return path, frame


@contextlib.contextmanager
def started(cmd: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[tuple[float, int]]:
    """Start a server in its own process group; yield (seconds to first /ping 200, pid); stop it."""
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            ready = None
            while time.perf_counter() - t0 < 120:
                if proc.poll() is not None:
                    raise RuntimeError(f"{cmd[0]} exited: {log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                        ready = time.perf_counter() - t0
                        break
                time.sleep(0.02)
            if ready is None:
                raise TimeoutError(f"{cmd} not ready: {log.read_text()[-3000:]}")
            yield ready, proc.pid
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, body: Path, conns: int, duration: int) -> dict[str, float]:
    threads = 1 if conns == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency", "-s", str(LUA), url],
        env={**os.environ, "WRK_BODY_FILE": str(body)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"p50_ms": p50, "p99_ms": p99, "rps": rps, "non2xx": float(errors.group(1)) if errors else 0.0}


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of process ``root`` and all its descendants (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    procs: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        procs[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, (ppid, _) in procs.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sum(procs[pid][1] for pid in tree if pid in procs)


def load_series(url: str, body: Path, duration: int, pid: int) -> dict[str, Any]:
    """One warmed-up wrk run with 1 connection and one with 16 (with the server's CPU ms per request)."""
    headers = {"Content-Type": "application/json"}
    httpx.post(url, content=body.read_bytes(), headers=headers).raise_for_status()
    subprocess.run(  # warm-up
        ["wrk", "-t1", "-c4", "-d2s", "-s", str(LUA), url],
        env={**os.environ, "WRK_BODY_FILE": str(body)},
        capture_output=True,
        check=True,
    )
    result = {}
    for conns in (1, 16):
        cpu = tree_cpu_seconds(pid)
        result[f"c{conns}"] = run = wrk(url, body, conns, duration)
        run["cpu_ms_per_req"] = (tree_cpu_seconds(pid) - cpu) * 1000 / max(1.0, run["rps"] * duration)
    return result


def summarize(samples: dict[str, list[Any]]) -> dict[str, Any]:
    """Medians over the rounds; cold start is the median of process start → first /ping 200."""
    result: dict[str, Any] = {}
    for conns in ("c1", "c16"):
        runs = samples[conns]
        keys = ("p50_ms", "p99_ms", "rps", "non2xx", "cpu_ms_per_req")
        result[conns] = {k: statistics.median(s[k] for s in runs) for k in keys}
        result[f"{conns}_samples"] = runs
    result["cold_start_s"] = statistics.median(samples["ready"])
    result["cold_start_samples"] = samples["ready"]
    result["load_avg_1min"] = samples.get("load_avg", [])
    return result


def floor_predict(model_path: Path, frame: Any) -> dict[str, float]:
    """Bare predict() of the raw xgboost model, 1 row, in a fresh process with OMP_NUM_THREADS=1."""
    code = f"""
import time, json, statistics, pandas as pd, numpy as np
from flowml.xgboost import load_model
m = load_model({str(model_path)!r})
row = pd.DataFrame(np.zeros((1, {FEATURES})) + 0.1, columns=[f"f{{i}}" for i in range({FEATURES})])
arr = row.to_numpy()
def med(f, n=2000):
    for _ in range(200): f()
    xs = []
    for _ in range(n):
        t = time.perf_counter(); f(); xs.append(time.perf_counter() - t)
    return statistics.median(xs) * 1000
print(json.dumps({{"numpy_ms": med(lambda: m.predict(arr)), "pandas_ms": med(lambda: m.predict(row))}}))
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout)
    return result


BARE_FASTAPI = """
from fastapi import FastAPI, Request
from fastapi.responses import Response
app = FastAPI()
@app.post("/invocations")
async def inv(request: Request) -> Response:
    await request.body()
    return Response(b'{"predictions":[1]}', media_type="application/json")
@app.get("/ping")
async def ping() -> Response:
    return Response(b"\\n", media_type="application/json")
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--out", default=str(HERE / "results.json"))
    parser.add_argument("--only", default="", help="comma-separated servers to run (default: all)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="flowml-serving-bench-"))
    model_path, frame = make_model(work, args.trees)
    row = frame.head(1)
    body = work / "body.json"
    body.write_text(json.dumps({"dataframe_split": json.loads(row.to_json(orient="split", index=False))}))
    predict_body = work / "predict.json"
    predict_body.write_text(json.dumps({"records": json.loads(row.to_json(orient="records"))}))
    (work / "bare_app.py").write_text(BARE_FASTAPI)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # mlflow execs `uvicorn`
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "BENTOML_DO_NOT_TRACK": "true",
        "BENTOML_HOME": str(work / "bentoml"),
    }
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()}}
    results["floor_predict"] = floor_predict(model_path, frame)

    def flowml_cmd(port: int, *extra: str) -> list[str]:
        serve = [sys.executable, "-m", "flowml.cli_models", "serve"]
        return [*serve, "-m", str(model_path), "-p", str(port), *extra]

    def mlflow_cmd(port: int) -> list[str]:
        return [
            str(BIN / "mlflow"), "models", "serve", "-m", str(model_path), "--env-manager", "local",
            "-p", str(port), "-h", "127.0.0.1",
        ]  # fmt: skip

    def bare_cmd(port: int) -> list[str]:
        return [str(BIN / "uvicorn"), "bare_app:app", "--app-dir", str(work), "--port", str(port),
                "--log-level", "warning", "--no-access-log"]  # fmt: skip

    unbatched = {"FLOWML_SERVING_INVOCATIONS_BATCHING": "off"}
    servers: dict[str, Any] = {
        "bare_fastapi": (bare_cmd, "/invocations", body, {}),
        "mlflow": (mlflow_cmd, "/invocations", body, {}),
        "flowml": (flowml_cmd, "/invocations", body, {}),
        "flowml_unbatched": (flowml_cmd, "/invocations", body, unbatched),
        "flowml_2workers": (lambda p: flowml_cmd(p, "--workers", "2"), "/invocations", body, {}),
        "flowml_predict": (flowml_cmd, "/predict", predict_body, {}),
        "flowml_predict_batching": (lambda p: flowml_cmd(p, "--batching"), "/predict", predict_body, {}),
    }
    names = [n for n in servers if not args.only or n in args.only.split(",")]
    samples: dict[str, dict[str, list[Any]]] = {n: {"c1": [], "c16": [], "ready": []} for n in names}
    for round_no in range(args.runs):  # interleaved: every server once per round, order reversed every
        for name in names if round_no % 2 == 0 else names[::-1]:  # other round
            cmd, path, payload, extra_env = servers[name]
            print(f"-- round {round_no + 1}/{args.runs}: {name}", file=sys.stderr)
            port = free_port()
            with started(cmd(port), port, {**env, **extra_env}, work / f"{name}.log") as (ready, pid):
                series = load_series(f"http://127.0.0.1:{port}{path}", payload, args.duration, pid)
            samples[name]["ready"].append(ready)
            for conns in ("c1", "c16"):
                samples[name][conns].append(series[conns])
            samples[name].setdefault("load_avg", []).append(os.getloadavg()[0])
        for name in names:
            results[name] = summarize(samples[name])
        Path(args.out).write_text(json.dumps(results, indent=2))  # partial results survive a failure
    results["machine"]["load_avg_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(table(results))


def table(r: dict[str, Any]) -> str:
    lines = []
    if "bare_fastapi" in r:
        bare = r["bare_fastapi"]["c1"]["p50_ms"]
        numpy_ms, pandas_ms = r["floor_predict"]["numpy_ms"], r["floor_predict"]["pandas_ms"]
        lines += [
            f"floor: predict() numpy {numpy_ms:.2f} ms, pandas {pandas_ms:.2f} ms; bare FastAPI p50 "
            f"{bare:.2f} ms → floor {numpy_ms + bare:.2f} (numpy) / {pandas_ms + bare:.2f} ms (pandas)",
            "",
        ]
    lines += [
        "| server | p50 c1 (ms) | p99 c1 (ms) | req/s c1 | req/s c16 | p50 c16 (ms) | CPU ms/req c16 "
        "| cold start (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, e in r.items():
        if not isinstance(e, dict) or "c16" not in e:
            continue
        lines.append(
            f"| {name} | {e['c1']['p50_ms']:.2f} | {e['c1']['p99_ms']:.2f} | {e['c1']['rps']:.0f} | "
            f"{e['c16']['rps']:.0f} | {e['c16']['p50_ms']:.2f} | {e['c16']['cpu_ms_per_req']:.2f} | "
            f"{e['cold_start_s']:.2f} |"
        )
    if "mlflow" in r and "flowml" in r:
        mlflow, flowml = r["mlflow"], r["flowml"]
        lines += [
            "",
            f"c16 throughput flowml /invocations / mlflow: "
            f"{flowml['c16']['rps'] / mlflow['c16']['rps']:.2f}x (target >= 3x)",
            f"cold start flowml {flowml['cold_start_s']:.2f} s vs mlflow {mlflow['cold_start_s']:.2f} s "
            "(target <= 6 s)",
        ]
        if "bare_fastapi" in r:
            floor = r["floor_predict"]["pandas_ms"] + r["bare_fastapi"]["c1"]["p50_ms"]
            over = flowml["c1"]["p50_ms"] - floor
            lines.append(f"p50 c1 flowml - floor(pandas): {over:+.2f} ms (target <= +2 ms)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
