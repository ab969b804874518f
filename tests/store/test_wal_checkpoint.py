"""SQLite's WAL is checkpointed by a background thread (``store.wal_checkpoint``), so a commit does not
copy the log back into the database file itself. What was committed must reach the database file
soon after, the thread must not outlive its use, and a failing pass must not stop later ones."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flowml.client.local import SqlBackend
from flowml.entities import Metric
from flowml.store.wal_checkpoint import BACKSTOP_PAGES, WalCheckpointer
from tests.fixtures.scripts import run_script


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "flowml-wal-checkpoint"]


@pytest.fixture
def backend(tmp_path: Path, artifact_root: str) -> Iterator[SqlBackend]:
    b = SqlBackend(f"sqlite:///{tmp_path / 'wal.db'}", artifact_root)
    yield b
    b.close()


def test_committed_points_reach_the_database_file_without_the_writer_checkpointing(
    backend: SqlBackend, tmp_path: Path
) -> None:
    exp = backend.create_experiment("wal", None, None)
    run = backend.create_run(exp, "", 0, {}, "r").info.run_id
    for step in range(20):
        backend.log_batch(
            run, [Metric(f"m{k}", k + step / 10, 1_000 + step, step) for k in range(10)], [], []
        )
    checkpointer = backend.db.checkpointer
    assert checkpointer is not None
    _wait_for(lambda: checkpointer.passes >= 1 and not checkpointer._wake.is_set())
    time.sleep(checkpointer._interval_s * 3)  # a pass already due has finished too
    # The writers' own checkpoint only starts at the backstop, far above what these commits wrote.
    with backend.db.read() as session:
        pages = session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert pages == BACKSTOP_PAGES
    # The database file alone, without its -wal, holds every point: the thread copied them there.
    copy = tmp_path / "main-file-only.db"
    shutil.copyfile(tmp_path / "wal.db", copy)
    with sqlite3.connect(copy) as con:
        stored = con.execute("SELECT count(*), sum(value) FROM metrics WHERE run_id = ?", (run,)).fetchone()
    assert stored[0] == 200
    assert stored[1] == pytest.approx(sum(k + s / 10 for k in range(10) for s in range(20)))


def test_the_thread_stops_when_idle_and_restarts_on_the_next_commit(tmp_path: Path) -> None:
    path = tmp_path / "idle.db"
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE t (x)")
    checkpointer = WalCheckpointer(
        lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False),
        interval_s=0.01,
        idle_exit_s=0.2,
    )
    assert not checkpointer.running and not _threads()  # building it starts nothing
    checkpointer.note_commit()
    assert checkpointer.running
    _wait_for(lambda: checkpointer.passes == 1)
    _wait_for(lambda: not checkpointer.running)  # idle: the thread has gone
    assert not _threads()
    checkpointer.note_commit()
    _wait_for(lambda: checkpointer.passes == 2)
    checkpointer.close()
    assert not checkpointer.running and not _threads()
    checkpointer.note_commit()  # after close: nothing starts
    assert not checkpointer.running
    time.sleep(0.05)
    assert checkpointer.passes == 2


def test_a_failing_pass_is_logged_and_the_next_one_uses_a_new_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "fail.db"
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA journal_mode=WAL")
    connects: list[sqlite3.Connection] = []

    def connect() -> sqlite3.Connection:
        con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if not connects:
            con.close()  # the first connection is unusable: its pass fails
        connects.append(con)
        return con

    checkpointer = WalCheckpointer(connect, interval_s=0.01, idle_exit_s=5)
    with caplog.at_level(logging.WARNING, logger="flowml.store.wal_checkpoint"):
        checkpointer.note_commit()
        _wait_for(lambda: len(connects) == 1 and not checkpointer._wake.is_set())
        time.sleep(0.05)
        checkpointer.note_commit()
        _wait_for(lambda: checkpointer.passes == 1)
    checkpointer.close()
    assert len(connects) == 2
    assert any("WAL checkpoint failed" in r.getMessage() for r in caplog.records)


_FORK_SCRIPT = """
import os, sys, time
from flowml.client.local import SqlBackend

backend = SqlBackend(sys.argv[1], sys.argv[2])
exp = backend.create_experiment("fork", None, None)
checkpointer = backend.db.checkpointer
deadline = time.monotonic() + 30
while checkpointer.passes < 1:  # the parent's thread has run
    assert time.monotonic() < deadline
    time.sleep(0.01)
pid = os.fork()
if pid == 0:  # the child: the parent's thread does not exist here; its commits start one of its own
    try:
        before = checkpointer.passes
        backend.create_run(exp, "", 1, {}, "child")
        while checkpointer.passes == before:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        code = 0
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 4
    os._exit(code)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, os.waitstatus_to_exitcode(status)
before = checkpointer.passes
backend.create_run(exp, "", 2, {}, "parent")  # and the parent's checkpointer still works
while checkpointer.passes == before:
    assert time.monotonic() < deadline
    time.sleep(0.01)
print("ok")
"""


def test_a_forked_child_checkpoints_with_its_own_thread(tmp_path: Path, artifact_root: str) -> None:
    """Run in a fresh interpreter: forking a pytest worker would fork its threads and state too."""
    uri = f"sqlite:///{tmp_path / 'fork.db'}"
    done = run_script(
        _FORK_SCRIPT, [uri, artifact_root], cwd=tmp_path, python_flags=["-X", "dev"], timeout=120
    )
    assert done.stdout.strip() == "ok", done.stderr
