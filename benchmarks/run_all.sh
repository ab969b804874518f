#!/usr/bin/env bash
# Run every benchmark workload for MLflow, and for flowml when its fluent API is importable.
# Each workload runs for both implementations back to back, so both see the same machine load.
# Prints one JSON line per workload and implementation, then a markdown table.
# Writes nothing in the repository: copy the table into benchmarks/README.md yourself.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
REPS=${REPS:-5}

impls=(mlflow)
if "$PY" -c "import flowml; flowml.start_run" >/dev/null 2>&1; then
    impls+=(flowml)
else
    echo "flowml fluent API not importable: flowml rows pending" >&2
fi

results=$(mktemp)
trap 'rm -f "$results"' EXIT
{
    for impl in "${impls[@]}"; do "$PY" benchmarks/fluent_log_metric.py --impl "$impl" --reps "$REPS"; done
    for impl in "${impls[@]}"; do "$PY" benchmarks/log_batch.py --impl "$impl" --reps "$REPS"; done
    for impl in "${impls[@]}"; do "$PY" benchmarks/import_time.py --impl "$impl"; done
    for impl in "${impls[@]}"; do "$PY" benchmarks/import_time.py --impl "$impl" --touch; done
    for impl in "${impls[@]}"; do "$PY" benchmarks/minimal_script.py --impl "$impl" --reps "$REPS"; done
    "$PY" benchmarks/sqlite_floor.py --reps "$REPS"
    "$PY" benchmarks/sqlite_floor.py --reps "$REPS" --one-txn
} | tee "$results"
echo
"$PY" benchmarks/table.py < "$results"
