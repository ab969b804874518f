"""PostgreSQL metric-point groups written from the server's event loop, on an asyncio connection.

The thread path (``GroupCommit``'s leader, ``_pg_batch.write_points``) costs every group two thread
hand-offs and GIL waits: the loop wakes the leader, the leader wakes the loop. Here the loop sends
the same one-exchange pipeline (``_pg_batch.point_statements``) itself and awaits the answer while
it goes on parsing requests; the backend works on the other core meanwhile.

* Connections of the event loop's own (the server has one loop per process): as many as groups in
  flight (two: while the backend writes one group, the next is on its way), opened when first
  needed, in autocommit mode: PostgreSQL makes a pipeline up to its Sync one implicit transaction.
* Anything unexpected (a lost connection, an error) drops the connection and raises: the caller
  hands the group to the thread path, which has the retries and finds a failing batch.
* A point stored already fails the plain ``INSERT``: :meth:`LoopPointWriter.write` returns ``None``
  with nothing written, and the thread path writes the group with ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import make_url

from flowml.store import _pg_arrays, _pg_batch
from flowml.store.tables import PointRow

__all__ = ["LoopPointWriter"]

logger = logging.getLogger(__name__)


class LoopPointWriter:
    """Writes metric-point groups on the running event loop's own PostgreSQL connections.

    Building it does no I/O. A connection carries one group at a time; there are as many as groups
    in flight (``GroupCommit`` keeps at most ``loop_in_flight`` per loop), each opened on first need.
    """

    def __init__(self, uri: str) -> None:
        url = make_url(uri).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._idle: list[Any] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def write(
        self, run_ids: set[str], rows: Sequence[PointRow], latest_rows: Sequence[PointRow], *, active: str
    ) -> dict[str, str] | None:
        """``_pg_batch.write_points`` from the event loop: each run's stage, or ``None`` when a
        point was stored already (then nothing was written)."""
        import psycopg

        (lock, lock_params), *inserts = _pg_batch.point_statements(run_ids, rows, latest_rows, active)
        connection = await self._take()
        try:
            cursor = connection.cursor()
            async with connection.pipeline():
                await cursor.execute(lock, lock_params)
                for sql, params in inserts:
                    await connection.execute(sql, params)
            stages = {run_id: stage for run_id, stage in await cursor.fetchall()}
        except psycopg.errors.UniqueViolation:
            stages = None
        except BaseException:
            with contextlib.suppress(Exception):  # the connection is not reused
                await connection.close()
            raise
        self._idle.append(connection)
        return stages

    @property
    def connections(self) -> int:
        """Idle connections held for this loop (0 before the first write and after :meth:`aclose`)."""
        return len(self._idle)

    async def aclose(self) -> None:
        """Close this loop's idle connections (a later write opens new ones)."""
        idle, self._idle = self._idle, []
        if self._loop is asyncio.get_running_loop():
            for connection in idle:
                with contextlib.suppress(Exception):
                    await connection.close()

    async def _take(self) -> Any:
        import psycopg

        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._idle, self._loop = [], loop  # another loop's connections are not used here
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        logger.debug("opening an event-loop PostgreSQL connection for metric points")
        connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        _pg_arrays.register(connection.adapters)
        return connection
