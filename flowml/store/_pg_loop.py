"""PostgreSQL metric-point groups written from the server's event loop, on a connection of its own.

The thread path (``GroupCommit``'s leader, ``_pg_batch.write_points``) costs every group two thread
hand-offs and GIL waits: the loop wakes the leader, the leader wakes the loop. Here the loop sends
the same one-exchange pipeline (``_pg_batch.point_statements``) itself and awaits the answer while
it goes on parsing requests; the backend works on the other core meanwhile.

* Connections of the event loop's own (the server has one loop per process): as many as groups in
  flight (two: while the backend writes one group, the next is on its way), opened by psycopg when
  first needed, in autocommit mode: PostgreSQL makes a pipeline up to its Sync one implicit
  transaction.
* The exchange itself is driven on libpq's own calls (:class:`_Channel`): the connection stays in
  pipeline mode, each statement is prepared once per connection and then sent as
  ``Bind``/``Execute`` with the parameters as they are, and the loop waits for the socket only when
  libpq has nothing to hand over. psycopg's asyncio pipeline spent ~0.5 ms of loop time a group
  on the same exchange (its generators, a reader added and removed per step, result objects),
  about twice this.
* Anything unexpected raises, and the caller hands the group to the thread path, which has the
  retries and finds a failing batch: a lost connection (or any failure mid-exchange) is dropped; after
  a statement's error the connection, back at its Sync, is kept.
* A point stored already fails the plain ``INSERT``: :meth:`LoopPointWriter.write` returns ``None``
  with nothing written, and the thread path writes the group with ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import make_url

from flowml.store import _pg_batch
from flowml.store.tables import PointRow

__all__ = ["LoopPointWriter"]

logger = logging.getLogger(__name__)

_UNIQUE_VIOLATION = "23505"


class LoopPointWriter:
    """Writes metric-point groups on the running event loop's own PostgreSQL connections.

    Building it does no I/O. A connection carries one group at a time; there are as many as groups
    in flight (``GroupCommit`` keeps at most ``loop_in_flight`` per loop), each opened on first need.
    """

    def __init__(self, uri: str) -> None:
        url = make_url(uri).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._idle: list[_Channel] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def write(
        self, run_ids: set[str], rows: Sequence[PointRow], latest_rows: Sequence[PointRow], *, active: str
    ) -> dict[str, str] | None:
        """``_pg_batch.write_points`` from the event loop: each run's stage, or ``None`` when a
        point was stored already (then nothing was written)."""
        statements = _pg_batch.point_statements(run_ids, rows, latest_rows, active)
        channel = await self._take()
        try:
            results = await channel.exchange(statements)
        except BaseException:
            await channel.close()  # its state is unknown: not reused
            raise
        self._idle.append(channel)
        error = next((r for r in results if r.status == _status().FATAL_ERROR), None)
        if error is not None:
            if _sqlstate(error) == _UNIQUE_VIOLATION:
                return None  # the implicit transaction was rolled back whole
            raise _error(error)
        stages = results[0]  # the runs' lock comes first
        return {
            stages.get_value(i, 0).decode(): stages.get_value(i, 1).decode() for i in range(stages.ntuples)
        }

    @property
    def connections(self) -> int:
        """Idle connections held for this loop (0 before the first write and after :meth:`aclose`)."""
        return len(self._idle)

    async def aclose(self) -> None:
        """Close this loop's idle connections (a later write opens new ones)."""
        idle, self._idle = self._idle, []
        for channel in idle:
            if self._loop is asyncio.get_running_loop():
                await channel.close()
            else:
                channel.abandon()

    async def _take(self) -> _Channel:
        import psycopg

        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # another loop's connections are not used here
            for channel in self._idle:
                channel.abandon()
            self._idle, self._loop = [], loop
        while self._idle:
            channel = self._idle.pop()
            if not channel.connection.closed:
                return channel
        logger.debug("opening an event-loop PostgreSQL connection for metric points")
        connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        return _Channel(connection, loop)


class _Channel:
    """A psycopg connection whose exchanges this module drives itself, in libpq's pipeline mode.

    psycopg opened it (conninfo, authentication, TLS) and closes it; in between, only this class
    talks on it.
    """

    def __init__(self, connection: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.connection = connection
        self._pg = connection.pgconn
        self._pg.nonblocking = 1
        self._pg.enter_pipeline_mode()
        self._loop = loop
        self._prepared: dict[str, bytes] = {}  # SQL → the name it is prepared under on this connection
        self._names = itertools.count()

    async def exchange(self, statements: Sequence[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """Send the statements and a Sync; one result per statement, in order (a statement after a
        failed one comes back ``PIPELINE_ABORTED``)."""
        pg = self._pg
        commands: list[tuple[str, bytes] | None] = []  # (SQL, name) for a prepare, None for an execute
        for sql, params in statements:
            values, types, formats = _wire(params)
            name = self._prepared.get(sql)
            if name is None:
                name = b"flowml_points_%d" % next(self._names)  # fresh: a failed prepare is never reused
                pg.send_prepare(name, _numbered(sql), param_types=types)
                commands.append((sql, name))
            pg.send_query_prepared(name, values, param_formats=formats)
            commands.append(None)
        pg.pipeline_sync()
        await self._flush()
        executed = []
        for command, result in zip(commands, await self._results(), strict=True):
            if command is None:
                executed.append(result)
            elif result.status == _status().COMMAND_OK:  # not if an earlier statement failed
                self._prepared[command[0]] = command[1]
        return executed

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.connection.close()

    def abandon(self) -> None:
        """Close from outside the connection's event loop (psycopg's close needs that loop; libpq's
        own does not): the server sees the client leave instead of a socket left open."""
        with contextlib.suppress(Exception):
            self._pg.finish()

    async def _flush(self) -> None:
        pg = self._pg
        while pg.flush():  # 1: more to send once the socket takes it
            await self._ready(self._loop.add_writer, self._loop.remove_writer)
            pg.consume_input()  # whatever the server answered meanwhile

    async def _results(self) -> list[Any]:
        """Every result up to the Sync's, ``None`` separators left out."""
        import psycopg
        from psycopg.pq import ConnStatus

        pg, sync = self._pg, _status().PIPELINE_SYNC
        results: list[Any] = []
        separated = False
        while True:
            while pg.is_busy():
                await self._ready(self._loop.add_reader, self._loop.remove_reader)
                pg.consume_input()  # raises once the connection is lost
            result = pg.get_result()
            if result is None:
                # One None ends each statement's results; two in a row, or a broken connection,
                # would have this loop spin: libpq has nothing more to give.
                if separated or pg.status != ConnStatus.OK:
                    message = pg.error_message.decode(errors="replace").strip()
                    raise psycopg.OperationalError(message or "the connection was lost")
                separated = True
                continue
            separated = False
            if result.status == sync:
                return results
            results.append(result)

    async def _ready(self, add: Any, remove: Any) -> None:
        fd = self._pg.socket
        ready: asyncio.Future[None] = self._loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        add(fd, wake)
        try:
            await ready
        finally:
            remove(fd)


def _wire(params: tuple[Any, ...]) -> tuple[list[bytes], list[int], list[int]]:
    """Values, type OIDs and formats: the binary arrays as they are; strings as text of unknown
    type, which the statement's context types (as psycopg sends a ``str``)."""
    values, types, formats = [], [], []
    for param in params:
        if isinstance(param, str):
            values.append(param.encode())
            types.append(0)
            formats.append(0)
        else:
            values.append(param)
            types.append(param.OID)
            formats.append(1)
    return values, types, formats


@functools.cache
def _numbered(sql: str) -> bytes:
    """psycopg's ``%s`` placeholders as PostgreSQL's ``$1``, ``$2``, ..."""
    parts = sql.split("%s")
    return "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)).encode() + parts[-1].encode()


def _status() -> Any:
    from psycopg.pq import ExecStatus

    return ExecStatus


def _sqlstate(result: Any) -> str | None:
    from psycopg.pq import DiagnosticField

    state = result.error_field(DiagnosticField.SQLSTATE)
    return state.decode() if state else None


def _error(result: Any) -> Exception:
    import psycopg.errors

    message = (result.error_message or b"").decode(errors="replace").strip()
    state = _sqlstate(result)
    cls: type[Exception] = psycopg.OperationalError
    with contextlib.suppress(KeyError):
        cls = psycopg.errors.lookup(state) if state else cls
    return cls(message or "the metric points' statements failed")
