"""`import mlflow` / `import flowml` wall time.

Whole-process `python -c "import X"` minus `python -c "pass"`, median of --runs each
(after warm-up runs, so .pyc files exist). Uses hyperfine when it is installed, else
times the subprocesses itself. flowml resolves its public names lazily, so --touch also
measures `import X; X.start_run; X.log_metric` (what a script needs before its first call).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import _common


def with_hyperfine(commands: list[list[str]], runs: int, env: dict[str, str], cwd: str) -> list[list[float]]:
    out = f"{cwd}/hyperfine.json"
    argv = [
        "hyperfine",
        "--shell=none",
        "--style=none",
        f"--runs={runs}",
        "--warmup=2",
        f"--export-json={out}",
    ]
    argv += [shlex.join(c) for c in commands]  # --shell=none splits shell-words style
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    with open(out) as f:
        return [r["times"] for r in json.load(f)["results"]]


def with_subprocess(commands: list[list[str]], runs: int, env: dict[str, str], cwd: str) -> list[list[float]]:
    times: list[list[float]] = [[] for _ in commands]
    for rep in range(runs + 2):  # 2 warm-up rounds, interleaved so drift hits both
        for i, cmd in enumerate(commands):
            start = time.perf_counter()
            subprocess.run(cmd, env=env, cwd=cwd, check=True, stdin=subprocess.DEVNULL)
            if rep >= 2:
                times[i].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description="benchmark: import time")
    parser.add_argument("--impl", choices=_common.IMPLS, default="mlflow")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-hyperfine", action="store_true")
    parser.add_argument("--touch", action="store_true", help="also resolve X.start_run and X.log_metric")
    args = parser.parse_args()

    statement = f"import {args.impl}"
    if args.touch:
        statement += f"; {args.impl}.start_run; {args.impl}.log_metric"
    commands = [[sys.executable, "-c", "pass"], [sys.executable, "-c", statement]]
    tool = "hyperfine" if shutil.which("hyperfine") and not args.no_hyperfine else "subprocess"
    with tempfile.TemporaryDirectory(prefix="flowml-bench-") as workdir:
        env = _common.child_env(args.impl, workdir)
        measure = with_hyperfine if tool == "hyperfine" else with_subprocess
        base, imp = measure(commands, args.runs, env, workdir)
    result: dict[str, Any] = {
        "workload": "import_time",
        "impl": args.impl,
        "version": _common.impl_version(args.impl),
        "args": ["--touch"] if args.touch else [],
        "unit": "s",
        "median": statistics.median(imp) - statistics.median(base),
        "details": {
            "tool": tool,
            "runs": args.runs,
            "python_pass_median": statistics.median(base),
            "python_import_median": statistics.median(imp),
        },
        "machine": _common.machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
