"""Group commit: concurrent small writes share one transaction.

Under concurrency (a server's threads logging batches) the fixed cost of a write transaction —
taking SQLite's single writer lock, BEGIN, COMMIT — dominates the work. Writers here queue their
function; whichever thread finds no leader becomes the leader, drains the queue and runs every
queued function in ONE transaction, each inside its own SAVEPOINT so one refused write (a changed
param, a deleted run) fails alone and the others commit. Every caller still gets its own result or
error, and returns only after the transaction holding its write has committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from flowml.exceptions import FlowmlError
from flowml.store.db import Database

__all__ = ["GroupCommit"]

T = TypeVar("T")

#: How long a waiting writer sleeps before checking whether it must lead (a leader that has just
#: finished may have missed its item); the common path is woken at once by its leader.
_RECHECK_S = 0.002


class _Item(Generic[T]):
    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[Session], T]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommit:
    def __init__(self, db: Database, max_group: int = 64) -> None:
        self._db = db
        self._max_group = max_group
        self._queue: list[_Item[Any]] = []
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()

    def submit(self, fn: Callable[[Session], T]) -> T:
        item: _Item[T] = _Item(fn)
        with self._queue_lock:
            self._queue.append(item)
        while not item.done.is_set():
            if self._leader.acquire(blocking=False):
                try:
                    self._lead()
                finally:
                    self._leader.release()
            else:
                item.done.wait(_RECHECK_S)
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[return-value]

    def _lead(self) -> None:
        while True:
            with self._queue_lock:
                group, self._queue = self._queue[: self._max_group], self._queue[self._max_group :]
            if not group:
                return
            self._commit(group)

    def _commit(self, group: list[_Item[Any]]) -> None:
        try:
            self._db.write(lambda session: self._run_group(session, group))
        except Exception as exc:  # noqa: BLE001 - the transaction failed: so did every write in it
            for item in group:
                item.error = exc
        finally:
            for item in group:
                item.done.set()

    @staticmethod
    def _run_group(session: Session, group: list[_Item[Any]]) -> None:
        for item in group:  # a retried transaction starts every item afresh
            item.result, item.error = None, None
            try:
                with session.begin_nested():
                    item.result = item.fn(session)
            except FlowmlError as exc:
                item.error = exc
