"""The web UI on big data, in headless Chromium (issue 10's bar: first page of a 100k-run experiment
≤ 1 s; a 100k-point metric downsampled on the server and drawn ≤ 1 s).

A real ``flowml server`` process serves a SQLite store holding one experiment of N runs (the search
benchmark's corpus, ``benchmarks/search/populate.py``: 5 params, 5 metrics, 3 tags each) plus one run
with a 100k-point metric. Debian's Chromium (``/usr/bin/chromium``, driven by Playwright) then times,
``--repeats`` times each:

* ``runs_first_page``: open the experiment in a fresh browser context (nothing cached) → 100 rows
  rendered, on the page's clock (``performance.now()``: from the start of the navigation);
* ``runs_sort_by_metric``: click a metric column → re-sorted rows (server-side ``order_by``), and
* ``runs_next_page``: "Load 100 more" → 200 rows, both timed from Python around the click;
* ``chart_100k``: open the big run in a fresh context → its chart drawn, on the page's clock;
  ``history_request`` is the browser's own timing of the downsampled-history request in it.

Prints one JSON object (medians and all samples, in ms, plus the 1-minute load average).

    .venv/bin/python benchmarks/ui/bench.py --runs 100000 --repeats 7
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "benchmarks" / "search"))
sys.path.insert(0, str(REPO))

from populate import is_populated, populate_flowml_sqlite  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
POINTS = 100_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _store(db_dir: Path, n_runs: int) -> tuple[str, str, str]:
    """(store URI, experiment id, id of the run holding the 100k-point metric); built once, reused."""
    from flowml.client import FlowmlClient
    from flowml.entities import Metric

    path = db_dir / f"flowml-ui-{n_runs}.db"
    if not is_populated(path, n_runs):
        populate_flowml_sqlite(path, n_runs)
    uri = f"sqlite:///{path}"
    client = FlowmlClient(uri)
    found = client.search_runs(["1"], "tags.bench = 'chart'", max_results=1)
    if found:
        return uri, "1", found[0].info.run_id
    run = client.create_run("1", run_name="long-training", tags={"bench": "chart"}).info.run_id
    t0 = 1_700_000_000_000
    points = [Metric("loss", 2.0 / (1 + s / 500) + (s % 997) / 5000, t0 + s * 10, s) for s in range(POINTS)]
    for k in range(0, POINTS, 1000):
        client.backend.log_batch(run, points[k : k + 1000], [], [])
    client.set_terminated(run)
    return uri, "1", run


@contextlib.contextmanager
def _server(store: str, artifacts: Path) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWML_", "MLFLOW_"))}
    cmd = [sys.executable, "-m", "flowml.cli", "server", "--backend-store-uri", store,
           "--artifacts-destination", str(artifacts), "--port", str(port)]  # fmt: skip
    log = open(artifacts.parent / "server.log", "ab")  # noqa: SIM115 - closed with the server
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


def measure(url: str, exp: str, big_run: str, repeats: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    keys = ("runs_first_page", "runs_sort_by_metric", "runs_next_page", "chart_100k", "history_request")
    samples: dict[str, list[float]] = {k: [] for k in keys}
    rows = "document.querySelectorAll('#runs tbody tr').length"
    history = """() => performance.getEntriesByType('resource')
        .filter(e => e.name.includes('history-downsampled')).map(e => e.responseEnd - e.startTime)[0]"""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for i in range(repeats + 1):  # the first round warms the server's caches and is dropped
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{url}/#/experiments/{exp}")
            page.wait_for_function(f"() => {rows} >= 100")
            first = float(page.get_attribute("#runs", "data-rendered-at") or "nan")  # page clock
            t0 = time.perf_counter()
            page.click("#runs th:has-text('m1')")
            page.wait_for_selector("#runs th.sorted:has-text('m1')")
            page.wait_for_function(f"() => {rows} >= 100")
            sort = _ms(t0)
            t0 = time.perf_counter()
            page.click("#load-more")
            page.wait_for_function(f"() => {rows} >= 200")
            more = _ms(t0)
            ctx.close()
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{url}/#/runs/{big_run}")
            page.wait_for_selector("#metric-chart[data-drawn='1']")
            chart = float(page.get_attribute("#metric-chart", "data-drawn-at") or "nan")
            info = page.inner_text("#chart-info")
            assert "of 100,000 points" in info, info
            request = round(float(page.evaluate(history)), 1)
            ctx.close()
            if i:
                for key, value in zip(samples, (first, sort, more, chart, request), strict=True):
                    samples[key].append(value)
        browser.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dir", default="/tmp/flowml-ui-bench", help="where the SQLite file goes")
    args = parser.parse_args()
    db_dir = Path(args.dir)
    store, exp, big_run = _store(db_dir, args.runs)
    with _server(store, db_dir / "artifacts") as url:
        samples = measure(url, exp, big_run, args.repeats)
    out: dict[str, Any] = {
        "runs": args.runs,
        "repeats": args.repeats,
        "load_1min": os.getloadavg()[0],
        "median_ms": {k: statistics.median(v) for k, v in samples.items()},
        "samples_ms": samples,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
