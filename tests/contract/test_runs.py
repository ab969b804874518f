"""Run lifecycle semantics every client must share."""

from __future__ import annotations

import re

import pytest

from flowml.entities import LifecycleStage, RunStatus
from flowml.exceptions import FlowmlError


def test_create_run_defaults(client) -> None:
    run = client.create_run("0")
    info = run.info
    assert re.fullmatch(r"[0-9a-f]{32}", info.run_id)
    assert info.run_uuid == info.run_id
    assert info.status == RunStatus.RUNNING
    assert info.lifecycle_stage == LifecycleStage.ACTIVE
    assert info.start_time and info.end_time is None
    assert info.artifact_uri.endswith(f"/0/{info.run_id}/artifacts")
    assert info.run_name and run.data.tags["mlflow.runName"] == info.run_name
    assert run.data.tags["mlflow.user"] == info.user_id


def test_run_name_argument_and_tag(client) -> None:
    named = client.create_run("0", run_name="alpha")
    assert named.info.run_name == "alpha"
    by_tag = client.create_run("0", tags={"mlflow.runName": "beta"})
    assert client.get_run(by_tag.info.run_id).info.run_name == "beta"
    with pytest.raises(FlowmlError) as err:
        client.create_run("0", run_name="a", tags={"mlflow.runName": "b"})
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_unknown_run_is_404(client) -> None:
    with pytest.raises(FlowmlError) as err:
        client.get_run("0123456789abcdef0123456789abcdef")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert err.value.http_status == 404


def test_update_and_terminate(client) -> None:
    run_id = client.create_run("0").info.run_id
    client.update_run(run_id, name="renamed")
    run = client.get_run(run_id)
    assert run.info.run_name == "renamed" and run.data.tags["mlflow.runName"] == "renamed"
    client.set_terminated(run_id, "FAILED")
    info = client.get_run(run_id).info
    assert info.status == RunStatus.FAILED and info.end_time is not None
    with pytest.raises(FlowmlError) as err:
        client.update_run(run_id, status="EXPLODED")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    for status in ("SCHEDULED", "KILLED", "FINISHED", "RUNNING"):
        client.update_run(run_id, status=status)
        assert client.get_run(run_id).info.status == status


def test_soft_delete_and_restore(client) -> None:
    run_id = client.create_run("0").info.run_id
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == LifecycleStage.DELETED
    with pytest.raises(FlowmlError) as err:
        client.log_param(run_id, "p", 1)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == LifecycleStage.ACTIVE
    client.log_param(run_id, "p", 1)


def test_tags_upsert_and_delete(client) -> None:
    run_id = client.create_run("0").info.run_id
    client.set_tag(run_id, "t", "1")
    client.set_tag(run_id, "t", "2")
    assert client.get_run(run_id).data.tags["t"] == "2"
    client.delete_tag(run_id, "t")
    assert "t" not in client.get_run(run_id).data.tags
    with pytest.raises(FlowmlError) as err:
        client.delete_tag(run_id, "t")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
