"""The outbox dispatcher: at-least-once, in commit order per model, retried with backoff, and
nothing lost when the dispatcher is killed between delivering and recording."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from flowml.client import FlowmlClient
from flowml.entities_registry import RegistryEvent
from flowml.registry.dispatch import Dispatcher, PrefectEventTarget, SubscriberTarget, prefect_event_name


def _versions(client: FlowmlClient, name: str, n: int) -> None:
    client.create_registered_model(name)
    root = client.get_experiment("0").artifact_location
    for i in range(n):
        client.create_model_version(name, f"{root}/m{i}")


def test_events_are_delivered_once_each_in_commit_order_per_model(flowml_env: str) -> None:
    client = FlowmlClient()
    _versions(client, "a", 2)
    _versions(client, "b", 1)
    client.transition_model_version_stage("a", "1", "Production", reason="go")
    client.set_registered_model_alias("a", "champion", "2")
    seen: list[RegistryEvent] = []
    dispatcher = Dispatcher(client.backend, [SubscriberTarget(seen.append)])
    assert dispatcher.run_once() == len(seen) == 5  # 3 created, 1 stage change, 1 alias move
    by_model = {name: [e.id for e in seen if e.name == name] for name in ("a", "b")}
    assert by_model["a"] == sorted(by_model["a"]) and len(by_model["a"]) == 4
    assert [e.event_type for e in seen if e.name == "a"][-2:] == [
        "model_version.stage_changed",
        "alias.moved",
    ]
    assert dispatcher.run_once() == 0  # delivered events are not delivered again
    stage = next(e for e in seen if e.event_type == "model_version.stage_changed")
    attempts = client.backend.list_registry_event_attempts(stage.id)
    assert [a.success for a in attempts] == [True]
    assert stage.payload["to_stage"] == "Production" and stage.payload["reason"] == "go"


def test_a_failing_delivery_is_retried_and_blocks_only_its_own_model(flowml_env: str) -> None:
    client = FlowmlClient()
    _versions(client, "flaky", 2)
    _versions(client, "fine", 1)
    calls: list[tuple[str, str | None]] = []
    failures = {"left": 2}

    def subscriber(event: RegistryEvent) -> None:
        calls.append((event.name, event.version))
        if event.name == "flaky" and event.version == "1" and failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("endpoint down")

    dispatcher = Dispatcher(client.backend, [SubscriberTarget(subscriber)], base_backoff_s=0.05)
    dispatcher.run_once()
    assert ("fine", "1") in calls
    assert ("flaky", "2") not in calls  # waits behind the failed flaky v1
    event = client.backend.list_registry_events(None, "flaky", 10, False)[0]
    assert event.attempts == 1 and event.last_error and "endpoint down" in event.last_error
    assert dispatcher.run_once() == 0  # still backing off
    deadline = time.monotonic() + 10
    while client.backend.list_registry_events(None, "flaky", 10, True) and time.monotonic() < deadline:
        time.sleep(0.05)
        dispatcher.run_once()
    assert client.backend.list_registry_events(None, "flaky", 10, True) == []
    assert [c for c in calls if c[0] == "flaky"] == [("flaky", "1")] * 3 + [("flaky", "2")]
    assert [a.success for a in client.backend.list_registry_event_attempts(event.id)] == [False, False, True]


_KILLED_DISPATCHER = textwrap.dedent(
    """
    import sys, time
    from flowml.client import FlowmlClient
    from flowml.registry.dispatch import Dispatcher, SubscriberTarget
    log = open(sys.argv[1], "a", buffering=1)
    def deliver(event):
        log.write(f"{event.id}\\n")
        if event.version == "3":
            time.sleep(600)  # killed here: delivered, not yet recorded
    Dispatcher(FlowmlClient().backend, [SubscriberTarget(deliver)]).run_once()
    """
)


def test_a_killed_dispatcher_loses_nothing(flowml_env: str, artifact_root: str, tmp_path: Path) -> None:
    client = FlowmlClient()
    _versions(client, "m", 5)
    log = tmp_path / "delivered.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_DISPATCHER, str(log)], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().split()) < 3):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    first = [int(x) for x in log.read_text().split()]
    assert len(first) == 3
    redelivered: list[int] = []
    Dispatcher(client.backend, [SubscriberTarget(lambda e: redelivered.append(e.id))]).run_once()
    all_ids = sorted(e.id for e in client.backend.list_registry_events(None, "m", 100, False))
    assert sorted(set(first) | set(redelivered)) == all_ids  # every event delivered at least once
    assert redelivered[0] == first[-1]  # the interrupted one again, then the rest in order
    assert client.backend.list_registry_events(None, "m", 100, True) == []


def test_prefect_event_names() -> None:
    assert prefect_event_name("model_version.stage_changed") == "flowml.model-version.stage-changed"
    assert prefect_event_name("alias.moved") == "flowml.alias.moved"


def test_prefect_target_emits_events_a_real_prefect_server_stores(flowml_env: str, prefect_api: str) -> None:
    import httpx

    client = FlowmlClient()
    _versions(client, "served", 1)
    client.transition_model_version_stage("served", "1", "Production", reason="ship it")
    delivered = Dispatcher(client.backend, [PrefectEventTarget()]).run_once()
    assert delivered == 2
    stage_event = client.backend.list_registry_events(None, "served", 10, False)[-1]
    attempt = client.backend.list_registry_event_attempts(stage_event.id)[-1]
    prefect_id = attempt.details["prefect"]["prefect_event_id"]
    found: list[dict[str, object]] = []
    deadline = time.monotonic() + 30
    while not found and time.monotonic() < deadline:
        response = httpx.post(
            f"{prefect_api}/events/filter",
            json={"filter": {"event": {"prefix": ["flowml.model-version.stage-changed"]}}, "limit": 50},
        )
        response.raise_for_status()
        found = [e for e in response.json()["events"] if e["id"] == prefect_id]
        time.sleep(0.5)
    assert found, "the event never reached the Prefect server"
    event = found[0]
    assert event["resource"]["prefect.resource.id"] == "flowml.model-version.served.1"
    assert event["resource"]["flowml.to_stage"] == "Production"
    assert event["payload"]["reason"] == "ship it"
