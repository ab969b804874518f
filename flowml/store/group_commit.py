"""Group commit: concurrent small writes share one transaction.

Under concurrency (a server's requests logging batches) the fixed cost of a write transaction —
taking SQLite's single writer lock, BEGIN, COMMIT, one statement per table — dominates the work.
Writers here queue a payload; one leader at a time drains the queue and hands every queued payload
to ``write_group(session, payloads)`` in ONE transaction, which returns each payload's error (or
None): a refused write (a changed param, a deleted run) fails alone and the others commit. Should
the group's transaction itself fail (anything but a database that stays busy), every payload is
retried in a transaction of its own, so only the culprit fails. Every caller gets its own outcome,
and returns only after the transaction holding its write has committed.

Inline (SQLite files, the server's event loop): what one pass of the loop submits is written on the loop
right after that pass, through :meth:`Database.write_nowait`, when it is light enough and nothing else
holds the write lock; anything else goes to the background leader below (see ``submit_async``). A group
of fewer than ``inline_gather`` payloads first waits one more pass, once, for the requests the loop is
about to read (each group pays a commit and a lookup of its runs: with 8 log-batch clients, groups grew
from 2.7-3.1 batches on average to 4.3-4.6, and the machine's CPU per request fell ~12%).

On the loop's own connections (PostgreSQL, the server's event loop): payloads ``loop_accepts`` takes
are written by ``loop_writer`` as tasks of the loop. A group goes out at once when none is in flight;
a second one (``loop_in_flight``) only once ``loop_overlap_min`` payloads wait: every group costs the
database and the loop ~0.5 ms each whatever its size, so a small second group costs more than the
overlap gains (benchmarks/README.md). A group it does not write (``None``, or an error) goes to the
background leader.

Who leads: a thread calling :meth:`GroupCommit.submit` with no leader active leads until its own
write is done, then hands any remaining queue to a background thread; :meth:`submit_async` (the
server's event loop, which must not block) always hands the queue to that background thread. The
leader flag lives under the queue lock, so an item is queued either before a leader's last look at
the queue or with no leader active — never lost. One leader at a time: SQLite has one writer, and
on PostgreSQL a second concurrent leader thread (tried, with the several-exchange write of the time)
halved the group size and cost more CPU per request than it overlapped, on this 2-core machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from flowml.exceptions import TemporarilyUnavailable
from flowml.store.db import Database, WriteBusy

__all__ = ["GroupCommit"]

logger = logging.getLogger(__name__)

P = TypeVar("P")

#: ``write_group(session, payloads)`` → one error (or None) per payload, in order.
WriteGroup = Callable[[Session, Sequence[P]], Sequence[BaseException | None]]
#: ``loop_writer(payloads)`` on an event loop → errors as ``WriteGroup``, or None: nothing written.
LoopWriter = Callable[[Sequence[P]], Awaitable[Sequence[BaseException | None] | None]]


class _Item(Generic[P]):
    __slots__ = ("error", "event", "future", "loop", "payload")

    def __init__(self, payload: P, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.payload = payload
        self.error: BaseException | None = None
        self.loop = loop
        self.event = threading.Event() if loop is None else None
        self.future: asyncio.Future[None] | None = loop.create_future() if loop is not None else None


def _resolve(items: list[_Item[P]]) -> None:
    """On an event loop: complete the futures of ``items`` (one loop wake-up per group)."""
    for item in items:
        assert item.future is not None
        if item.future.done():  # the request was cancelled; its write stands
            continue
        if item.error is None:
            item.future.set_result(None)
        else:
            item.future.set_exception(item.error)


class GroupCommit(Generic[P]):
    def __init__(
        self,
        db: Database,
        write_group: WriteGroup[P],
        max_group: int = 64,
        *,
        inline_weight: Callable[[P], int] | None = None,
        inline_max: int = 0,
        inline_gather: int = 4,
        loop_writer: LoopWriter[P] | None = None,
        loop_accepts: Callable[[P], bool] | None = None,
        loop_in_flight: int = 2,
        loop_overlap_min: int = 3,
    ) -> None:
        self._db = db
        self._write_group = write_group
        self._max_group = max_group
        # Writes on the event loop itself (see submit_async): SQLite files only.
        self._weight = inline_weight
        self._inline = inline_weight is not None and db.can_write_nowait
        self._inline_max = inline_max
        self._pending: dict[asyncio.AbstractEventLoop, list[_Item[P]]] = {}
        self._inline_gather = inline_gather
        self._gathering: set[asyncio.AbstractEventLoop] = set()  # loops whose group waits a pass
        # Written by a task of the loop itself (see loop_writer): PostgreSQL.
        self._loop_writer = loop_writer
        self._loop_accepts = loop_accepts
        self._loop_pending: dict[asyncio.AbstractEventLoop, list[_Item[P]]] = {}
        self._loop_busy: dict[asyncio.AbstractEventLoop, int] = {}
        self._loop_in_flight = loop_in_flight
        self._loop_overlap_min = loop_overlap_min
        self._loop_tasks: set[asyncio.Task[None]] = set()
        self._queue: list[_Item[P]] = []
        self._lock = threading.Lock()
        self._leading = False
        self._executor: ThreadPoolExecutor | None = None

    # -- callers ---------------------------------------------------------------------------
    def submit(self, payload: P) -> None:
        """Write ``payload`` (from any thread); raises its error."""
        item: _Item[P] = _Item(payload)
        if self._enqueue(item):
            self._lead(until=item)
        assert item.event is not None
        item.event.wait()
        if item.error is not None:
            raise item.error

    async def submit_async(self, payload: P) -> None:
        """Write ``payload`` from the running event loop; raises its error.

        With ``inline_weight`` (SQLite), the payloads submitted in one pass of the event loop are
        written on the loop right after that pass, in one transaction, when their weight is at most
        ``inline_max`` and SQLite's write lock is free: no thread hand-off, no GIL hand-off per
        statement. Otherwise they go to the background leader, never waiting on the loop.
        """
        loop = asyncio.get_running_loop()
        item: _Item[P] = _Item(payload, loop)
        if self._loop_writer is not None and self._on_loop(payload):
            pending = self._loop_pending.setdefault(loop, [])
            pending.append(item)
            crossing = 1 if self._loop_busy.get(loop, 0) == 0 else self._loop_overlap_min
            if len(pending) == crossing and self._loop_ready(loop, len(pending)):
                loop.call_soon(self._start_loop_group, loop)
        elif self._inline:
            pending = self._pending.setdefault(loop, [])
            pending.append(item)
            if len(pending) == 1:
                loop.call_soon(self._flush_inline, loop)
        else:
            self._to_leader(item)
        assert item.future is not None
        await item.future

    def _flush_inline(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``: write what its requests submitted in the pass that just ended, or hand it over;
        a small group first waits one more pass (once) for what the loop reads next."""
        if len(self._pending[loop]) < self._inline_gather and loop not in self._gathering:
            self._gathering.add(loop)
            loop.call_soon(self._flush_inline, loop)  # callbacks added now run in the next pass
            return
        self._gathering.discard(loop)
        group = self._pending.pop(loop)
        assert self._weight is not None
        weight = sum(self._weight(item.payload) for item in group)
        if weight <= self._inline_max and len(group) <= self._max_group and not self._leading:
            payloads = [item.payload for item in group]
            try:
                errors = self._db.write_nowait(lambda session: self._write_group(session, payloads))
            except WriteBusy:
                pass
            except Exception:  # the group's transaction failed: the leader finds the culprit
                logger.debug("an inline group write failed; the background leader retries it", exc_info=True)
            else:
                for item, error in zip(group, errors, strict=True):
                    item.error = error
                _resolve(group)
                return
        for item in group:
            self._to_leader(item)

    def _on_loop(self, payload: P) -> bool:
        if self._loop_accepts is not None and not self._loop_accepts(payload):
            return False
        return self._weight is None or self._weight(payload) <= self._inline_max

    def _loop_ready(self, loop: asyncio.AbstractEventLoop, waiting: int) -> bool:
        """Whether ``waiting`` payloads on ``loop`` may go out as a group now."""
        busy = self._loop_busy.get(loop, 0)
        return busy == 0 or (busy < self._loop_in_flight and waiting >= self._loop_overlap_min)

    def _start_loop_group(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``: send what its requests submitted (up to a group's weight) as one group."""
        pending = self._loop_pending.pop(loop, [])
        if not pending or not self._loop_ready(loop, len(pending)):
            if pending:
                self._loop_pending[loop] = pending
            return
        group: list[_Item[P]] = []
        weight = 0
        for item in pending:
            weight += self._weight(item.payload) if self._weight is not None else 0
            if group and (len(group) == self._max_group or weight > self._inline_max):
                break
            group.append(item)
        if len(group) < len(pending):
            self._loop_pending[loop] = pending[len(group) :]
        self._loop_busy[loop] = self._loop_busy.get(loop, 0) + 1
        task = loop.create_task(self._write_loop_group(loop, group))
        self._loop_tasks.add(task)
        task.add_done_callback(self._loop_tasks.discard)

    async def _write_loop_group(self, loop: asyncio.AbstractEventLoop, group: list[_Item[P]]) -> None:
        assert self._loop_writer is not None
        try:
            try:
                errors = await self._loop_writer([item.payload for item in group])
            except Exception:  # the leader retries it, finding the culprit if there is one
                logger.debug(
                    "a group written on the event loop failed; the background leader retries it",
                    exc_info=True,
                )
                errors = None
            if errors is None:
                for item in group:
                    self._to_leader(item)
            else:
                for item, error in zip(group, errors, strict=True):
                    item.error = error
                _resolve(group)
        finally:
            self._loop_busy[loop] -= 1
            if self._loop_pending.get(loop):
                self._start_loop_group(loop)

    def _to_leader(self, item: _Item[P]) -> None:
        """Queue a loop's ``item`` for the background leader, starting one if none leads."""
        if self._enqueue(item):
            self._background().submit(self._lead)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- the leader ------------------------------------------------------------------------
    def _background(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="flowml-group-commit")
            return self._executor

    def _enqueue(self, item: _Item[P]) -> bool:
        """Queue ``item``; True when the caller must start a leader."""
        with self._lock:
            self._queue.append(item)
            if self._leading:
                return False
            self._leading = True
            return True

    def _lead(self, until: _Item[P] | None = None) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._leading = False
                    return
                handoff = until is not None and until.event is not None and until.event.is_set()
                if not handoff:
                    group, self._queue = self._queue[: self._max_group], self._queue[self._max_group :]
            if handoff:  # our own write is done: a background thread leads on in our place
                self._background().submit(self._lead)
                return
            self._commit(group)

    def _commit(self, group: list[_Item[P]]) -> None:
        payloads = [item.payload for item in group]
        try:
            errors = list(self._db.write(lambda session: self._write_group(session, payloads)))
        except TemporarilyUnavailable as exc:  # the database stayed busy: no use retrying each
            errors = [exc] * len(group)
        except Exception as exc:  # noqa: BLE001 - the group's transaction failed: find the culprit
            errors = [exc] if len(group) == 1 else [self._alone(p) for p in payloads]
        waiting: dict[asyncio.AbstractEventLoop, list[_Item[P]]] = {}
        for item, error in zip(group, errors, strict=True):
            item.error = error
            if item.event is not None:
                item.event.set()
            else:
                assert item.loop is not None
                waiting.setdefault(item.loop, []).append(item)
        for loop, items in waiting.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(_resolve, items)

    def _alone(self, payload: P) -> BaseException | None:
        try:
            return self._db.write(lambda session: self._write_group(session, [payload]))[0]
        except Exception as exc:  # noqa: BLE001 - this payload's own failure
            return exc
