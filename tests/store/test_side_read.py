"""The side reader: a large SQLite search page reads its params and tags on a second connection in
parallel. Whatever the side does (free, busy, failing, closed, in a forked child), the page must
be exactly what the serial read gives."""

from __future__ import annotations

import logging
import sqlite3
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowml.client.local import SqlBackend
from flowml.entities import Metric, Param, Run, RunTag, ViewType
from flowml.store import run_load, tracking
from flowml.store.side_read import SideReader
from tests.fixtures.scripts import run_script

_TEXT = ['he said "hi"', "ünïcödé ✓ 🚀", '{"json": [1]}', "", "line\nbreak", "back\\slash", "'q'"]
_KEYS = ["a b", "c.d", "e-f", "g/h", "i:j", "ünï"]  # the odd characters keys may hold
_RUNS = 150  # above run_load.SIDE_READ_MIN_RUNS: search pages go to the side reader


@pytest.fixture
def backend(tmp_path: Path, artifact_root: str) -> Iterator[SqlBackend]:
    b = SqlBackend(f"sqlite:///{tmp_path / 'side.db'}", artifact_root)
    yield b
    b.close()


@pytest.fixture
def experiment(backend: SqlBackend) -> str:
    assert _RUNS >= run_load.SIDE_READ_MIN_RUNS
    exp = backend.create_experiment("side", None, None)
    for i in range(_RUNS):
        run = backend.create_run(exp, "", 1_000 + i, {}, f"r{i}").info.run_id
        if i % 7 == 0:
            continue  # no params, no metrics, only the run-name tag
        text, key = _TEXT[i % len(_TEXT)], _KEYS[i % len(_KEYS)]
        backend.log_batch(
            run,
            [Metric("m", i / 3, 5, i), Metric(f"k {key}", -i, 6, 0)],
            [Param("p", str(i)), Param(f"q {key}", text)],
            [RunTag("t", text), RunTag(f"t.{i}", "x")],
        )
    return exp


def _page(backend: SqlBackend, exp: str, side: SideReader | None) -> list[Run]:
    with backend.db.read() as session:
        return list(tracking.search_runs(session, [exp], None, ViewType.ALL, 1000, None, None, side))


def _slow_statement() -> str:
    """A statement the side reader takes a while (about a second) to answer."""
    count = "SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3000000"
    return f"WITH RECURSIVE c(n) AS ({count}) SELECT max(n) FROM c"


def test_the_parallel_page_equals_the_serial_one(backend: SqlBackend, experiment: str) -> None:
    side = backend.db.side_reader
    assert side is not None
    parallel, serial = _page(backend, experiment, side), _page(backend, experiment, None)
    assert len(serial) == _RUNS
    assert parallel == serial
    by_name = {run.info.run_name: run for run in parallel}
    assert by_name["r0"].data.params == {} and by_name["r0"].data.metrics == {}
    assert by_name["r0"].data.tags == {"mlflow.runName": "r0"}
    r9 = by_name["r9"].data  # 9 % 7 != 0: every kind of child, with awkward text
    text, key = _TEXT[9 % len(_TEXT)], _KEYS[9 % len(_KEYS)]
    assert r9.params == {"p": "9", f"q {key}": text}
    assert r9.tags == {"t": text, "t.9": "x", "mlflow.runName": "r9"}
    assert r9.metrics == {"m": 3.0, f"k {key}": -9.0}
    # the public client path (what search_runs through SqlBackend does) gives the same page
    assert list(backend.search_runs([experiment], None, ViewType.ALL, 1000, None, None)) == serial


def test_a_busy_side_reader_leaves_the_page_to_the_caller(backend: SqlBackend, experiment: str) -> None:
    side = backend.db.side_reader
    assert side is not None
    serial = _page(backend, experiment, None)
    slow = side.submit(_slow_statement(), ())
    assert slow is not None
    assert side.submit("SELECT 1", ()) is None  # one statement at a time, never queued
    assert _page(backend, experiment, side) == serial  # read serially meanwhile
    assert not slow.done()
    assert slow.result(timeout=60) == 3_000_000
    deadline = time.monotonic() + 5
    while (again := side.submit("SELECT 2", ())) is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the side frees itself right after handing over the result
    assert again is not None and again.result(timeout=10) == 2


def test_a_failing_side_read_falls_back_to_the_callers_connection(
    backend: SqlBackend, experiment: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "no such dir" / "x.db"
    broken = SideReader(lambda: sqlite3.connect(missing))  # cannot open: the side read fails
    serial = _page(backend, experiment, None)
    with caplog.at_level(logging.WARNING, logger="flowml.store.run_load"):
        assert _page(backend, experiment, broken) == serial
    assert "side read failed" in caplog.text
    with pytest.raises(sqlite3.OperationalError):  # the error itself reaches the future
        future = broken.submit("SELECT 1", ())
        assert future is not None
        future.result(timeout=10)
    broken.close()


def test_a_closed_side_reader_starts_nothing(backend: SqlBackend, experiment: str) -> None:
    side = SideReader(backend.db.engine.raw_connection)
    first = side.submit("SELECT 3", ())
    assert first is not None and first.result(timeout=10) == 3
    side.close()
    side.close()  # twice is fine
    assert side.submit("SELECT 4", ()) is None
    assert _page(backend, experiment, side) == _page(backend, experiment, None)


_FORK_SCRIPT = """
import os, sys
from flowml.client.local import SqlBackend
from flowml.entities import ViewType

backend = SqlBackend(sys.argv[1], sys.argv[2])
exp = backend.create_experiment("fork", None, None)
for i in range(int(sys.argv[3])):
    backend.create_run(exp, "", i, {"t": str(i)}, f"r{i}")


def page():
    runs = backend.search_runs([exp], None, ViewType.ALL, 1000, None, None)
    return [(r.info.run_id, r.data.tags) for r in runs]


before = page()  # the side reader's thread and connection now exist in this process
pid = os.fork()
if pid == 0:  # the child: the parent's side thread does not exist here
    try:
        code = 0 if page() == before else 3
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 4
    os._exit(code)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, os.waitstatus_to_exitcode(status)
assert page() == before  # and the parent's side reader still works
print("ok")
"""


def test_a_forked_child_gets_its_own_side_reader(tmp_path: Path, artifact_root: str) -> None:
    """Run in a fresh interpreter: forking a pytest worker would fork its threads and state too."""
    uri = f"sqlite:///{tmp_path / 'fork.db'}"
    done = run_script(
        _FORK_SCRIPT, [uri, artifact_root, str(_RUNS)], cwd=tmp_path, python_flags=["-X", "dev"], timeout=120
    )
    assert done.stdout.strip() == "ok"


def test_a_script_exits_cleanly_after_a_parallel_search(tmp_path: Path) -> None:
    """The side thread and connection are closed at exit without an error on stderr."""
    script = textwrap.dedent(
        f"""
        import flowml
        flowml.set_tracking_uri("sqlite:///{tmp_path / "exit.db"}")
        with flowml.start_run():
            flowml.log_param("p", "v")
        for _ in range({_RUNS}):
            flowml.start_run(); flowml.set_tag("t", "v"); flowml.end_run()
        runs = flowml.search_runs(output_format="list")
        assert len(runs) == {_RUNS + 1}, len(runs)
        print("ok")
        """
    )
    done = run_script(script, cwd=tmp_path, python_flags=["-X", "dev"], timeout=120)
    assert done.stdout.strip() == "ok"
    assert done.stderr == ""
