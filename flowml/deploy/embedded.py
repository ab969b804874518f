"""Embedded mode: registry events → the deployment pipeline in a background process, no Prefect server.

``start_embedded()`` runs a :class:`~flowml.registry.dispatch.Dispatcher` thread whose subscriber starts
``python -m flowml.deploy.pipeline`` (or, when ``PREFECT_API_URL`` is set, the Prefect flow itself) for
every version that moves to a watched stage (default Production) or gets a watched alias (default
``champion``). The outbox makes it durable: an event is marked delivered only once the background
process was started, and the pipeline skips a version that is already serving (duplicates are cheap).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowml.entities_registry import RegistryEvent, RegistryEventType
from flowml.registry.dispatch import Dispatcher, SubscriberTarget

__all__ = ["EmbeddedDeployer", "start_embedded", "trigger_of"]


def trigger_of(event: RegistryEvent, stages: Iterable[str], aliases: Iterable[str]) -> str | None:
    """``"Production"`` / ``"@champion"`` when ``event`` should deploy its version, else None."""
    payload = event.payload
    if event.event_type == RegistryEventType.MODEL_VERSION_STAGE_CHANGED:
        stage = str(payload.get("to_stage") or "")
        return stage if stage in set(stages) else None
    if event.event_type == RegistryEventType.ALIAS_MOVED:
        alias = str(payload.get("alias") or "")
        return f"@{alias}" if alias in set(aliases) and payload.get("to_version") else None
    return None


@dataclass
class EmbeddedDeployer:
    """A dispatcher subscriber: one background deployment process per matching event."""

    stages: tuple[str, ...] = ("Production",)
    aliases: tuple[str, ...] = ("champion",)
    target: str = "local"
    port: int | None = None
    log_dir: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __call__(self, event: RegistryEvent) -> dict[str, Any]:
        trigger = trigger_of(event, self.stages, self.aliases)
        if trigger is None or not event.version:
            return {"skipped": True}
        args = ["--name", event.name, "--version", str(event.version), "--target", self.target,
                "--event-id", str(event.id), "--trigger", trigger]  # fmt: skip
        if self.port is not None:
            args += ["--port", str(self.port)]
        if os.environ.get("PREFECT_API_URL"):  # a server is there: make it a tracked flow run
            code = (
                "import sys; from flowml.deploy.flows import deploy_model_version as f; "
                "a = dict(zip(sys.argv[1::2], sys.argv[2::2])); "
                "f(name=a['--name'], version=a['--version'], target=a['--target'], "
                "event_id=a['--event-id'], trigger=a['--trigger'], "
                "port=int(a['--port']) if '--port' in a else None)"
            )
            cmd = [sys.executable, "-c", code, *args]
        else:
            cmd = [sys.executable, "-m", "flowml.deploy.pipeline", *args]
        log_dir = Path(self.log_dir or os.environ.get("FLOWML_DEPLOYMENTS_DIR") or "flowml-deployments")
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"deploy-event-{event.id}.log", "ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env}, start_new_session=True,
            )  # fmt: skip
        self.processes = [p for p in self.processes if p.poll() is None] + [proc]
        return {"deployment_pid": proc.pid, "trigger": trigger}

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the background deployments started so far (tests, the main job)."""
        for proc in list(self.processes):
            proc.wait(timeout)

    def terminate(self) -> None:
        from flowml.deploy.targets.local import stop_process_group

        for proc in self.processes:
            if proc.poll() is None:
                stop_process_group(proc.pid)
            proc.poll()

    def subscriber(self) -> SubscriberTarget:
        types = frozenset({RegistryEventType.MODEL_VERSION_STAGE_CHANGED, RegistryEventType.ALIAS_MOVED})
        return SubscriberTarget(self, types, name="embedded-deploy")


def start_embedded(
    client: Any = None,
    *,
    stages: Iterable[str] = ("Production",),
    aliases: Iterable[str] = ("champion",),
    target: str = "local",
    port: int | None = None,
    poll_interval_s: float = 0.2,
) -> tuple[Dispatcher, EmbeddedDeployer]:
    """Start the dispatcher thread with the embedded deployer; ``dispatcher.stop()`` ends it."""
    if client is None:
        from flowml.client import FlowmlClient

        client = FlowmlClient()
    deployer = EmbeddedDeployer(tuple(stages), tuple(aliases), target, port)
    dispatcher = Dispatcher(client.backend, [deployer.subscriber()], poll_interval_s=poll_interval_s)
    return dispatcher.start(), deployer
