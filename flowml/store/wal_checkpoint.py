"""SQLite's WAL checkpoints on a background thread, not in the commit that crosses the threshold.

In WAL mode a commit appends the pages it changed to the ``-wal`` file. By default the connection
whose commit takes that file past 1,000 pages then copies them back into the database file (and,
with ``synchronous=NORMAL``, syncs both) before its commit returns. In the server that connection
is often the event loop's own (``GroupCommit`` writes small log-batch groups inline), so every
request waiting on the loop paid for it: a checkpoint pass every few dozen groups was ~25% of the
loop's time per log-batch request (``benchmarks/README.md``).

* Each write transaction of a :class:`~flowml.store.db.Database` on a SQLite file calls
  :meth:`WalCheckpointer.note_commit`. A thread then runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its
  own connection, at most every :data:`INTERVAL_S` (commits in between are copied in one pass, and
  a page changed by many of them is written once). A passive checkpoint never waits for readers
  or writers and never blocks them; SQLite does the work with the GIL released.
* The engine's connections keep SQLite's own checkpoint as a backstop, at :data:`BACKSTOP_PAGES`
  (40 MiB of 4 KiB pages) instead of 1,000, for whatever this thread does not get to: other
  processes' writes, a pass that could not finish behind a long read, a process that exits first.
* Nothing happens when it is built; the thread starts on the first commit, stops after
  :data:`IDLE_EXIT_S` without one (a quiet process holds no thread and no connection) and on
  :meth:`WalCheckpointer.close`. A forked child starts its own.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["BACKSTOP_PAGES", "IDLE_EXIT_S", "INTERVAL_S", "WalCheckpointer"]

logger = logging.getLogger(__name__)

#: ``PRAGMA wal_autocheckpoint`` for the engine's connections (SQLite's default is 1,000 pages).
BACKSTOP_PAGES = 10_000
#: The shortest time between two checkpoint passes.
INTERVAL_S = 0.1
#: The thread exits after this long without a commit (the next commit starts a new one).
IDLE_EXIT_S = 5.0


class WalCheckpointer:
    """Runs passive WAL checkpoints for one database file, on a thread of its own.

    ``connect`` makes the connection (a SQLite DBAPI connection in autocommit mode, of its own:
    not a pooled one, which would stay checked out while the thread runs); it is called on the
    checkpoint thread and closed when the thread stops.
    """

    def __init__(
        self, connect: Callable[[], Any], *, interval_s: float = INTERVAL_S, idle_exit_s: float = IDLE_EXIT_S
    ) -> None:
        self._connect = connect
        self._interval_s = interval_s
        self._idle_exit_s = idle_exit_s
        self._state = threading.Lock()  # guards the fields below
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._at_exit = False
        #: Checkpoint passes run so far (in this process).
        self.passes = 0

    def note_commit(self) -> None:
        """A write transaction committed: make sure a pass follows within :data:`INTERVAL_S`."""
        if self._wake.is_set() and self._pid == os.getpid():
            return  # a pass is already due: the busy path takes no lock
        with self._state:
            if self._stop.is_set():
                return
            pid = os.getpid()
            if self._pid != pid:
                # After a fork the parent's thread does not exist here, and its connection must not
                # be used from this process: start over (the inherited objects are dropped).
                self._thread, self._wake, self._pid = None, threading.Event(), pid
            self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="flowml-wal-checkpoint", daemon=True)
                self._thread.start()
                if not self._at_exit:  # stop between passes rather than be cut off at exit
                    atexit.register(_close_at_exit, weakref.ref(self))
                    self._at_exit = True

    @property
    def running(self) -> bool:
        with self._state:
            return self._thread is not None and self._pid == os.getpid()

    def close(self) -> None:
        """Stop the thread (after a pass in progress); later commits start nothing."""
        with self._state:
            self._stop.set()
            thread, same_process = self._thread, self._pid == os.getpid()
            self._wake.set()
        if thread is not None and same_process and thread is not threading.current_thread():
            thread.join()

    # -- on the checkpoint thread --------------------------------------------------------------
    def _run(self) -> None:
        wake = self._wake
        connection = None
        try:
            while not self._stop.is_set():
                if not wake.wait(self._idle_exit_s):
                    with self._state:
                        if not wake.is_set():  # still idle: the next commit starts a new thread
                            self._thread = None
                            return
                if self._stop.wait(self._interval_s):  # let the commits of the interval gather
                    return
                wake.clear()
                try:
                    connection = connection or self._connect()
                    self._checkpoint(connection)
                except Exception:  # the backstop still checkpoints; try a new connection next time
                    logger.warning("WAL checkpoint failed", exc_info=True)
                    _close(connection)
                    connection = None
        finally:
            _close(connection)
            with self._state:
                if self._thread is threading.current_thread():
                    self._thread = None

    def _checkpoint(self, connection: Any) -> None:
        cursor = connection.cursor()
        try:
            busy, wal_pages, copied = cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            cursor.close()
        self.passes += 1
        logger.debug("WAL checkpoint: %s of %s pages copied (busy=%s)", copied, wal_pages, busy)


def _close(connection: Any) -> None:
    if connection is None:
        return
    try:
        connection.close()
    except Exception:  # closing a broken connection: nothing left to do
        logger.debug("closing the WAL checkpoint connection failed", exc_info=True)


def _close_at_exit(ref: weakref.ref[WalCheckpointer]) -> None:
    checkpointer = ref()
    if checkpointer is not None:
        checkpointer.close()
