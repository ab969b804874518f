"""The outbox seam for the dispatcher: pending events per model in order, attempts, retries."""

from __future__ import annotations

import time

import flowml
from flowml.client import FlowmlClient


def _now() -> int:
    return time.time_ns() // 1_000_000


def _model_with_events(client: FlowmlClient, name: str) -> None:
    run = client.create_run("0")
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.transition_model_version_stage(name, 1, "Staging")
    client.set_registered_model_alias(name, "champion", 1)


def test_pending_events_never_overtake_within_a_model(flowml_env: str) -> None:
    client = flowml.FlowmlClient()
    _model_with_events(client, "a")
    _model_with_events(client, "b")
    pending = client.pending_registry_events()
    assert [(e.name, e.event_type) for e in pending] == [
        ("a", "model_version.created"),
        ("a", "model_version.stage_changed"),
        ("a", "alias.moved"),
        ("b", "model_version.created"),
        ("b", "model_version.stage_changed"),
        ("b", "alias.moved"),
    ]
    first_a, first_b = pending[0], pending[3]
    # a failed delivery of a's first event with a retry later blocks a's queue, not b's
    failed = client.record_registry_event_attempt(
        first_a.id, success=False, target="prefect", error="connection refused", retry_at=_now() + 60_000
    )
    assert (failed.attempts, failed.last_error, failed.delivered_time) == (1, "connection refused", None)
    assert [e.name for e in client.pending_registry_events()] == ["b", "b", "b"]
    done = client.record_registry_event_attempt(
        first_b.id, success=True, target="in-process", details={"run": "x"}
    )
    assert done.delivered_time is not None and done.attempts == 1
    assert [e.id for e in client.pending_registry_events()] == [pending[4].id, pending[5].id]
    # due again: a's queue resumes from its first event
    client.record_registry_event_attempt(first_a.id, success=False, error="again", retry_at=_now() - 1)
    assert client.pending_registry_events()[0].id == first_a.id
    delivered = client.record_registry_event_attempt(first_a.id, success=True, target="prefect")
    assert delivered.attempts == 3 and delivered.last_error is None
    attempts = client.list_registry_event_attempts(first_a.id)
    assert [(a.attempt, a.success, a.error) for a in attempts] == [
        (1, False, "connection refused"),
        (2, False, "again"),
        (3, True, None),
    ]
    assert client.list_registry_event_attempts(first_b.id)[0].details == {"run": "x"}
    assert first_a.id not in [e.id for e in client.list_registry_events(pending_only=True)]


def test_events_and_history_survive_deleting_the_model(flowml_env: str) -> None:
    client = flowml.FlowmlClient()
    _model_with_events(client, "a")
    client.delete_registered_model("a")
    events = client.list_registry_events()
    assert [e.event_type for e in events][-1] == "registered_model.deleted"
    assert events[-1].payload["deleted_versions"] == ["1"]
    assert len(client.pending_registry_events()) == 4
