"""Prometheus metrics of ``flowml server`` (``GET /metrics``).

Key contracts:

* Request metrics (:meth:`ServerMetrics.observe`) are recorded by the pure-ASGI
  :class:`flowml.server.observe.ObserveMiddleware`, labelled by the route *template*
  (``/api/2.0/mlflow/runs/get``, ``/api/2.0/mlflow-artifacts/artifacts/{artifact_path}``), never
  the raw path, so the number of series is bounded by the routes the app has; unmatched paths share
  the ``<unmatched>`` route and unknown methods the ``OTHER`` method.
* Store gauges are computed when Prometheus scrapes (:class:`StoreCollector`): the outbox backlog,
  delivery attempts by outcome, and this process's connection pool. A store that cannot be read
  makes ``flowml_store_up`` 0 instead of failing the scrape.
* ``--workers N``: ``flowml server`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory, so
  every worker writes its request counters there and any worker's ``/metrics`` adds them up
  (prometheus_client's multiprocess mode). The mode is decided when prometheus_client is first
  imported in a process; :class:`ServerMetrics` follows whatever was decided.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from flowml.client.local import SqlBackend

__all__ = ["LATENCY_BUCKETS", "UNMATCHED", "ServerMetrics", "StoreCollector"]

logger = logging.getLogger(__name__)

#: Seconds; log-batch and gets sit in the low milliseconds, searches and uploads above.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: The route label of a request no route matched (404s, Host-header refusals, redirects).
UNMATCHED = "<unmatched>"


def multiprocess_mode() -> bool:
    """Whether prometheus_client in this process writes to ``PROMETHEUS_MULTIPROC_DIR`` files."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class StoreCollector(Collector):
    """Scrape-time gauges read from the tracking store and from this process's connection pool."""

    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    def describe(self) -> Iterable[Metric]:
        return []  # nothing to check at registration: collecting needs the database

    def collect(self) -> Iterator[Metric]:
        from flowml.store import registry

        up = GaugeMetricFamily("flowml_store_up", "1 when this scrape could read the tracking store")
        try:
            with self.backend.db.read() as session:
                stats = registry.outbox_stats(session)
        except Exception:  # a broken store is reported as a value, not as a failed scrape
            logger.warning("metrics: could not read the tracking store", exc_info=True)
            up.add_metric([], 0)
            yield up
            yield from self._pool()
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "flowml_registry_outbox_pending_events",
            "Registry events not yet delivered (the outbox backlog)",
            value=stats.pending,
        )
        yield GaugeMetricFamily(
            "flowml_registry_outbox_failing_events",
            "Undelivered registry events whose last delivery attempt failed",
            value=stats.failing,
        )
        age = 0.0
        if stats.oldest_pending_time is not None:
            age = max(0.0, time.time() - stats.oldest_pending_time / 1000)
        yield GaugeMetricFamily(
            "flowml_registry_outbox_oldest_pending_age_seconds",
            "Age of the oldest undelivered registry event (0 when none)",
            value=age,
        )
        attempts = CounterMetricFamily(
            "flowml_registry_event_delivery_attempts",
            "Delivery attempts recorded by event dispatchers, by outcome (from the store, all processes)",
            labels=["outcome"],
        )
        attempts.add_metric(["success"], stats.attempts_succeeded)
        attempts.add_metric(["failure"], stats.attempts_failed)
        yield attempts
        yield from self._pool()

    def _pool(self) -> Iterator[Metric]:
        status = self.backend.db.pool_status()
        if status is None:
            return
        for key, help_text in (
            ("size", "Configured size of this process's database connection pool"),
            ("checked_out", "Database connections in use by this process"),
            ("checked_in", "Idle database connections held by this process's pool"),
            ("overflow", "Connections opened beyond the pool size"),
        ):
            yield GaugeMetricFamily(f"flowml_db_pool_{key}", help_text, value=status[key])


class ServerMetrics:
    """The metrics of one app: request counters and latency, scrape-time store gauges.

    Building it does no I/O (the process collector is added on the first scrape).
    """

    def __init__(self, backend: SqlBackend) -> None:
        self.multiprocess = multiprocess_mode()
        self.registry = CollectorRegistry()
        # In multiprocess mode the values live in files and MultiProcessCollector reads every
        # worker's; registering the live objects too would report this worker's values twice.
        own = None if self.multiprocess else self.registry
        self._requests = Counter(
            "flowml_http_requests",
            "HTTP requests by method, route template and status code",
            ("method", "route", "status"),
            registry=own,
        )
        self._duration = Histogram(
            "flowml_http_request_duration_seconds",
            "Time from request start to the end of the response, by method and route template",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        #: Requests being handled by this process (the middleware counts on the event loop thread).
        self.active = 0
        in_progress = Gauge(
            "flowml_http_requests_in_progress",
            "Requests being handled",
            multiprocess_mode="livesum",
            registry=own,
        )
        # One process: read the plain counter at scrape time. Several: each request moves a shared
        # gauge (a file write), since another worker answers the scrape.
        self._in_progress_shared = in_progress if self.multiprocess else None
        if not self.multiprocess:
            in_progress.set_function(lambda: self.active)
        self.registry.register(StoreCollector(backend))
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._lazy_lock = threading.Lock()
        self._lazy_done = False

    def started(self) -> None:
        """A request begins (called on the event loop thread only, like :meth:`observe`)."""
        self.active += 1
        if self._in_progress_shared is not None:
            self._in_progress_shared.inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request (called on the event loop thread only)."""
        self.active -= 1
        if self._in_progress_shared is not None:
            self._in_progress_shared.dec()
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = (
                self._requests.labels(method, route, str(status)),
                self._duration.labels(method, route),
            )
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition in the format the scraper asked for (``Accept``), and its content type."""
        with self._lazy_lock:  # scrapes run in the thread pool
            if not self._lazy_done:
                self._lazy_done = True
                if self.multiprocess:
                    from prometheus_client.multiprocess import MultiProcessCollector

                    MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
                else:
                    from prometheus_client import ProcessCollector

                    ProcessCollector(registry=self.registry)
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def close(self) -> None:
        """At worker exit: drop this process's live gauges from the multiprocess directory."""
        if self.multiprocess:
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
