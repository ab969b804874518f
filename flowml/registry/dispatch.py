"""Deliver the registry's outbox events at least once (DESIGN §5).

The store writes every version creation, stage transition and alias move together with an outbox
row in one transaction. A :class:`Dispatcher` reads due rows per model in commit order, hands each
to every target and records the attempt and its outcome. A failed delivery is retried with
exponential backoff; until it succeeds, later events of the same model wait (the store's
``pending_registry_events`` never lets one overtake an earlier undelivered one). A dispatcher that
dies between a delivery and its record re-delivers that event when it (or another) runs again:
targets must tolerate duplicates (each event carries its ``id``).

Targets:
* :class:`PrefectEventTarget` — ``prefect.events.emit_event`` (``flowml.model-version.stage-changed``
  and friends, resource ``flowml.model-version.<name>.<version>``); used when a Prefect API is set.
* in-process subscribers — ``flowml.registry.dispatch.subscribe(event_type, fn)``; the deployment
  flow subscribes here in embedded mode.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from flowml.entities_registry import RegistryEvent

__all__ = [
    "Dispatcher",
    "EventTarget",
    "PrefectEventTarget",
    "SubscriberTarget",
    "prefect_event_name",
]

logger = logging.getLogger(__name__)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def prefect_event_name(event_type: str) -> str:
    """``model_version.stage_changed`` → ``flowml.model-version.stage-changed``."""
    return "flowml." + event_type.replace("_", "-")


class EventTarget(Protocol):
    name: str

    def deliver(self, event: RegistryEvent) -> Mapping[str, Any] | None:
        """Deliver one event; raise on failure. May return details worth recording."""


class _Backend(Protocol):
    def pending_registry_events(self, max_results: int) -> list[RegistryEvent]: ...

    def record_registry_event_attempt(
        self,
        event_id: int,
        success: bool,
        started_time: int,
        finished_time: int | None,
        target: str | None,
        error: str | None,
        details: Mapping[str, Any] | None,
        retry_at: int | None,
    ) -> RegistryEvent: ...


@dataclass
class SubscriberTarget:
    """Calls ``fn(event)`` for events of the subscribed types (all types when none are given)."""

    fn: Callable[[RegistryEvent], Any]
    event_types: frozenset[str] = frozenset()
    name: str = "subscriber"

    def deliver(self, event: RegistryEvent) -> Mapping[str, Any] | None:
        if self.event_types and event.event_type not in self.event_types:
            return {"skipped": True}
        result = self.fn(event)
        return result if isinstance(result, Mapping) else None


@dataclass
class PrefectEventTarget:
    """Emits a Prefect event per registry event (needs ``PREFECT_API_URL``: without it Prefect would
    start a throwaway server for every process)."""

    name: str = "prefect"
    extra_labels: Mapping[str, str] = field(default_factory=dict)

    def deliver(self, event: RegistryEvent) -> Mapping[str, Any] | None:
        from prefect.events import emit_event
        from prefect.settings import PREFECT_API_URL

        if not PREFECT_API_URL.value():
            raise RuntimeError("PREFECT_API_URL is not set: no Prefect server to deliver events to")

        payload = dict(event.payload)
        resource = {
            "prefect.resource.id": f"flowml.model-version.{event.name}.{event.version or ''}".rstrip("."),
            "prefect.resource.name": f"{event.name} v{event.version}" if event.version else event.name,
            "flowml.model.name": event.name,
            "flowml.model.version": str(event.version or ""),
            "flowml.event.id": str(event.id),
            **{f"flowml.{k}": str(v) for k, v in payload.items() if isinstance(v, str | int) and v != ""},
            **self.extra_labels,
        }
        emitted = emit_event(
            event=prefect_event_name(event.event_type),
            resource=resource,
            payload={**payload, "flowml_event_id": event.id},
        )
        if emitted is None:
            raise RuntimeError("Prefect did not emit the event")
        return {"prefect_event_id": str(emitted.id)}


class Dispatcher:
    """Polls the outbox through any client backend (SQL or REST) and delivers due events."""

    def __init__(
        self,
        backend: _Backend,
        targets: Sequence[EventTarget],
        *,
        poll_interval_s: float = 0.5,
        base_backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        batch: int = 100,
    ) -> None:
        self.backend = backend
        self.targets = list(targets)
        self.poll_interval_s = poll_interval_s
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.batch = batch
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Deliver every due event once; returns how many were delivered successfully."""
        delivered = 0
        failed_models: set[str] = set()
        for event in self.backend.pending_registry_events(self.batch):
            if event.name in failed_models:  # keep per-model order: nothing overtakes a failure
                continue
            if self._deliver(event):
                delivered += 1
            else:
                failed_models.add(event.name)
        return delivered

    def _deliver(self, event: RegistryEvent) -> bool:
        started = _now_ms()
        details: dict[str, Any] = {}
        try:
            for target in self.targets:
                result = target.deliver(event)
                if result:
                    details[target.name] = dict(result)
        except Exception as exc:  # noqa: BLE001 - any target failure is recorded and retried
            backoff = min(self.max_backoff_s, self.base_backoff_s * 2 ** min(event.attempts, 20))
            logger.warning("delivery of registry event %s failed: %s", event.id, exc)
            self.backend.record_registry_event_attempt(
                event.id, False, started, _now_ms(), ",".join(t.name for t in self.targets),
                f"{type(exc).__name__}: {exc}", details, _now_ms() + int(backoff * 1000),
            )  # fmt: skip
            return False
        self.backend.record_registry_event_attempt(
            event.id, True, started, _now_ms(), ",".join(t.name for t in self.targets), None, details, None
        )
        return True

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                logger.exception("registry event dispatch pass failed")
            self._stop.wait(self.poll_interval_s)

    def start(self) -> Dispatcher:
        """Run in a daemon thread (the server and embedded mode use this)."""
        self._thread = threading.Thread(target=self.run_forever, name="flowml-event-dispatch", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
