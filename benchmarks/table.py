"""Read benchmark JSON lines on stdin; print a markdown table with flowml/MLflow ratios."""

from __future__ import annotations

import json
import sys
from typing import Any

LABELS = {
    "fluent_log_metric": "fluent `log_metric` (values/s)",
    "log_batch": "`client.log_batch` (values/s)",
    "import_time": "`import X` (s)",
    "import_time --touch": "`import X; X.start_run; X.log_metric` (s)",
    "minimal_script": "minimal script, whole process (s)",
    "sqlite_floor": "raw SQLite executemany, 50 txns of 1,000 rows (rows/s)",
    "sqlite_floor --one-txn": "raw SQLite executemany, 1 txn of 50,000 rows (rows/s)",
}
HIGHER_IS_BETTER = {"values/s", "rows/s"}


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "pending"
    return f"{value:,.0f}" if unit in HIGHER_IS_BETTER else f"{value:.3f}"


def main() -> None:
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for line in sys.stdin:
        line = line.strip()
        if line.startswith("{"):
            r = json.loads(line)
            name = r["workload"] + ("" if not r.get("args") else " " + " ".join(r["args"]))
            rows.setdefault(name, {})[r["impl"]] = r
    print("| workload | MLflow | flowml | flowml vs MLflow |")
    print("|---|---:|---:|---:|")
    for name, by_impl in rows.items():
        any_r = next(iter(by_impl.values()))
        unit = any_r["unit"]
        label = LABELS.get(name, name)
        if "sqlite3" in by_impl:
            print(f"| {label} | floor: {fmt(by_impl['sqlite3']['median'], unit)} | | |")
            continue
        m = by_impl.get("mlflow", {}).get("median")
        f = by_impl.get("flowml", {}).get("median")
        ratio = ""
        if m and f:
            ratio = f"{f / m:,.1f}x faster" if unit in HIGHER_IS_BETTER else f"{m / f:,.1f}x faster"
        print(f"| {label} | {fmt(m, unit)} | {fmt(f, unit)} | {ratio} |")


if __name__ == "__main__":
    main()
