"""A second SQLite read connection on its own thread, to run one statement of a read in parallel.

Loading a search page runs two statements after the page itself: the runs' params and tags (SQLite
builds JSON in C, with the GIL released) and their latest metric rows (mostly Python building row
tuples, holding the GIL). On two cores they overlap: the params/tags statement runs here while
the caller fetches the metric rows (``benchmarks/search/README.md`` has the figures).

* **Bounded**: one connection and one thread per :class:`~flowml.store.db.Database`, used by one
  read at a time. :meth:`SideReader.submit` never waits: when the side is busy (another thread's
  search has it) or closed it returns ``None`` and the caller reads on its own connection.
* **Read committed**: the side statement sees its own snapshot, taken after the caller's. On
  PostgreSQL every statement of a READ COMMITTED transaction already does; on SQLite the params
  and tags read may be newer than the page (a tag set in between shows; a run purged in between
  has none). The same read, repeated, gives what the serial path gives (tests compare them).
* **Fork-safe**: a process forked after first use starts its own thread and connection.

Nothing happens when it is built; the thread and the connection start on the first
:meth:`SideReader.submit`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["SideReader"]

logger = logging.getLogger(__name__)


class SideReader:
    """Runs one read statement at a time on a dedicated connection and thread.

    ``connect`` makes the connection (a pooled SQLite DBAPI connection proxy in autocommit mode:
    this class issues ``BEGIN`` / ``COMMIT`` itself); it is called on the side thread.
    """

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._busy = threading.Lock()
        self._state = threading.Lock()  # guards the fields below
        self._pid = 0
        self._executor: ThreadPoolExecutor | None = None
        self._connection: Any = None
        self._closed = False

    def submit(self, sql: str, parameters: tuple[Any, ...]) -> Future[Any] | None:
        """Start ``sql`` on the side connection; the future's result is its first row's first
        column. ``None`` (nothing started) when the side is busy or closed."""
        if not self._busy.acquire(blocking=False):
            return None
        try:
            executor = self._executor_for_this_process()
            if executor is None:
                self._busy.release()
                return None
            return executor.submit(self._run, sql, parameters)
        except BaseException:
            self._busy.release()
            raise

    def close(self) -> None:
        """Stop the thread (after a statement in progress) and close the connection."""
        with self._state:
            self._closed = True
            executor, self._executor = self._executor, None
            same_process = self._pid == os.getpid()
        if executor is not None and same_process:
            executor.shutdown(wait=True)  # the side thread has finished with the connection
            self._close_connection()

    # -- on the side thread ------------------------------------------------------------------
    def _run(self, sql: str, parameters: tuple[Any, ...]) -> Any:
        try:
            if self._connection is None:
                self._connection = self._connect()
            cursor = self._connection.cursor()
            try:
                cursor.execute("BEGIN")
                try:
                    cursor.execute(sql, parameters)
                    row = cursor.fetchone()
                finally:
                    cursor.execute("COMMIT")  # a read: only ends the snapshot
            finally:
                cursor.close()
            return None if row is None else row[0]
        except BaseException:
            self._close_connection()  # a connection in an unknown state is not reused
            raise
        finally:
            self._busy.release()

    def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # closing a broken connection: nothing left to do
                logger.debug("closing the side read connection failed", exc_info=True)

    # -- helpers ------------------------------------------------------------------------------
    def _executor_for_this_process(self) -> ThreadPoolExecutor | None:
        with self._state:
            if self._closed:
                return None
            pid = os.getpid()
            if self._executor is None or self._pid != pid:
                # After a fork the parent's thread does not exist here, and its connection must
                # not be used from this process: start over (the inherited objects are dropped).
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowml-side-read")
                self._connection = None
                self._pid = pid
            return self._executor
