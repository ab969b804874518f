"""The benchmark corpus: one experiment holding N runs (a big sweep), generated deterministically.

Each run has 5 params (``p1`` in a/b/c/d, so ``params.p1 = 'a'`` keeps ~25%), 5 metrics
(``m1``..``m5`` uniform in [0, 1), so ``metrics.m1 > 0.5`` keeps ~50%; 0.1% of ``m2`` values are
NaN so the NaN segment of a metric sort is exercised), 3 tags (``mlflow.runName``,
``mlflow.user``, ``sweep``) and one logged point per metric (the ``metrics`` history table).
Run ids are random hex (like uuid4), start times strictly increase with the run's index.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

EXPERIMENT_NAME = "sweep"
BASE_TIME = 1_700_000_000_000
CHUNK = 50_000
P1_VALUES = ("a", "b", "c", "d")


@dataclass(slots=True)
class Chunk:
    runs: list[tuple[str, str, int]]  # (run_id, run_name, start_time)
    params: list[tuple[str, str, str]]  # (run_id, key, value)
    metrics: list[tuple[str, str, float, bool]]  # (run_id, key, value (NaN stored as 0.0), is_nan)
    tags: list[tuple[str, str, str]]  # (run_id, key, value)


def chunks(n_runs: int, seed: int = 42) -> Iterator[Chunk]:
    """The corpus in chunks of :data:`CHUNK` runs; child rows sorted by run id (cheap inserts)."""
    rng = random.Random(seed)
    for start in range(0, n_runs, CHUNK):
        chunk = Chunk([], [], [], [])
        for i in range(start, min(start + CHUNK, n_runs)):
            run_id = f"{rng.getrandbits(128):032x}"
            name = f"run-{i}"
            chunk.runs.append((run_id, name, BASE_TIME + i * 1000))
            chunk.params += [
                (run_id, "p1", rng.choice(P1_VALUES)),
                (run_id, "p2", str(rng.choice((0.1, 0.01, 0.001, 0.0001)))),
                (run_id, "p3", str(rng.randrange(1, 9))),
                (run_id, "p4", rng.choice(("adam", "sgd", "rmsprop"))),
                (run_id, "p5", f"{rng.getrandbits(32):08x}"),
            ]
            for k in range(1, 6):
                value = rng.random()
                nan = k == 2 and rng.random() < 0.001
                chunk.metrics.append((run_id, f"m{k}", 0.0 if nan else value, nan))
            chunk.tags += [
                (run_id, "mlflow.runName", name),
                (run_id, "mlflow.user", "bench"),
                (run_id, "sweep", f"s{i // 1000}"),
            ]
        chunk.params.sort()
        chunk.metrics.sort()
        chunk.tags.sort()
        yield chunk


def metric_value(value: float, is_nan: bool) -> float:
    return math.nan if is_nan else value
