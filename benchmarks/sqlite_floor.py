"""The floor: stdlib sqlite3 executemany into a metric-history table shaped like MLflow's.

Same volume and batching as log_batch.py (B transactions of 1,000 rows), WAL journal,
default synchronous; --one-txn inserts all rows with one executemany in one transaction.
No ORM, no validation: what any store on SQLite can at best approach.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
from typing import Any

import _common

SCHEMA = """
CREATE TABLE metrics (
    key VARCHAR(250) NOT NULL,
    value FLOAT NOT NULL,
    timestamp BIGINT NOT NULL,
    run_uuid VARCHAR(32) NOT NULL,
    step BIGINT NOT NULL DEFAULT 0,
    is_nan BOOLEAN NOT NULL DEFAULT 0,
    PRIMARY KEY (key, timestamp, step, run_uuid, value, is_nan)
)
"""


def workload(impl: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = sqlite3.connect(os.path.join(os.getcwd(), "floor.db"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(SCHEMA)
    run = "0" * 32
    now = int(time.time() * 1000)
    batches = [
        [(f"k{k}", float(b * 100 + s), now, run, b * 100 + s, 0) for k in range(10) for s in range(100)]
        for b in range(args.batches)
    ]
    if args.one_txn:
        batches = [[row for batch in batches for row in batch]]
    with _common.Timer() as timer:
        for batch in batches:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)", batch)
            conn.execute("COMMIT")
    rows = sum(len(b) for b in batches)
    conn.close()
    return {
        "value": rows / timer.seconds,
        "rows": rows,
        "transactions": len(batches),
        "seconds": timer.seconds,
    }


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batches", type=int, default=50)
    p.add_argument("--one-txn", action="store_true", help="one executemany, one transaction")


if __name__ == "__main__":
    _common.main("sqlite_floor", "rows/s", workload, add_args, impls=("sqlite3",))
