"""Per-run metric buffer: the fluent ``log_metric`` fast path (DESIGN §6).

Durability contract
-------------------
A fluent ``log_metric``/``log_metrics`` call validates its arguments and appends the point to the
run's in-memory buffer. Pending points are written with ``client.log_batch`` in chunks of at most
1,000 by a background thread as soon as ``log_buffer_size`` points are pending or
``log_flush_interval_s`` seconds after the first pending point, whichever comes first; and always,
synchronously, on ``end_run``, on ``flowml.flush()``, when a ``with start_run()`` block exits
(normally or by an exception) and at interpreter exit. A flush that fails keeps the unwritten
points and raises the error from the next ``log_metric``, ``flush()`` or ``end_run`` — nothing is
dropped silently. What can be lost is what a process killed with SIGKILL (or a power cut) had not
yet flushed: at most one interval's worth of points.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Sequence

from flowml.entities import Metric
from flowml.exceptions import FlowmlError

__all__ = ["MetricBuffer"]

logger = logging.getLogger(__name__)

_CHUNK = 1000


class MetricBuffer:
    """Buffers metric points of one run and writes them through ``write(points)`` in chunks."""

    def __init__(
        self,
        write: Callable[[Sequence[Metric]], None],
        *,
        max_pending: int = 1000,
        interval_s: float = 1.0,
    ) -> None:
        self._write = write
        self._max_pending = max(1, max_pending)
        self._interval_s = interval_s
        self._pending: list[Metric] = []
        self._lock = threading.Lock()  # guards _pending, _error, _thread, _closed
        self._flush_lock = threading.Lock()  # one writer at a time, in order
        self._wake = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- producer side ---------------------------------------------------------------------------
    def add(self, points: Sequence[Metric]) -> None:
        with self._lock:
            self._raise_pending_error()
            if self._closed:
                raise FlowmlError("Cannot log metrics to a run whose buffer is closed (run ended)")
            self._pending.extend(points)
            size = len(self._pending)
            if self._thread is None:
                self._start_thread()
        if size >= self._max_pending:
            self._wake.set()

    def flush(self) -> None:
        """Write everything pending now, in the caller's thread; raise any earlier failure."""
        self._drain()
        with self._lock:
            self._raise_pending_error()

    def close(self) -> None:
        """Flush and stop the background thread; later ``add`` calls fail."""
        try:
            self.flush()
        finally:
            with self._lock:
                self._closed = True
                thread, self._thread = self._thread, None
            self._wake.set()
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)
            atexit.unregister(self._flush_at_exit)

    # -- internals -------------------------------------------------------------------------------
    def _raise_pending_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise FlowmlError(
                f"A background flush of buffered metrics failed: {error}",
                error_code=getattr(error, "error_code", None),
            ) from error

    def _start_thread(self) -> None:
        self._thread = threading.Thread(target=self._run, name="flowml-metric-flush", daemon=True)
        self._thread.start()
        atexit.register(self._flush_at_exit)

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            with self._lock:
                if self._closed:  # close() flushed synchronously already
                    return
                if self._error is not None:  # wait until the user has seen it
                    continue
            try:
                self._drain()
            except Exception as exc:  # noqa: BLE001 - kept and re-raised to the user
                logger.warning("background metric flush failed: %s", exc)
                with self._lock:
                    self._error = exc

    def _drain(self) -> None:
        with self._flush_lock:
            while True:
                with self._lock:
                    chunk = self._pending[:_CHUNK]
                if not chunk:
                    return
                self._write(chunk)  # on failure the points stay pending
                with self._lock:
                    del self._pending[: len(chunk)]

    def _flush_at_exit(self) -> None:
        try:
            self._drain()
        except Exception:
            logger.exception("flowml: could not flush buffered metrics at exit")
