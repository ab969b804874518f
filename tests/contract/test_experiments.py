"""Experiment semantics every client must share (runs once per backend)."""

from __future__ import annotations

import pytest

from flowml.entities import LifecycleStage, ViewType
from flowml.exceptions import FlowmlError


def test_default_experiment_exists_with_mlflow_id_and_name(client) -> None:
    default = client.get_experiment("0")
    assert default.name == "Default"
    assert default.lifecycle_stage == LifecycleStage.ACTIVE
    assert client.get_experiment_by_name("Default").experiment_id == "0"


def test_create_get_and_tags(client) -> None:
    exp_id = client.create_experiment("exp-a", tags={"team": "risk", "n": 3})
    exp = client.get_experiment(exp_id)
    assert exp.name == "exp-a"
    assert exp.tags == {"team": "risk", "n": "3"}
    assert exp.artifact_location.endswith(f"/{exp_id}")
    assert exp.creation_time and exp.last_update_time
    client.set_experiment_tag(exp_id, "team", "fraud")
    client.set_experiment_tag(exp_id, "extra", "x")
    assert client.get_experiment(exp_id).tags == {"team": "fraud", "n": "3", "extra": "x"}
    client.delete_experiment_tag(exp_id, "extra")
    assert "extra" not in client.get_experiment(exp_id).tags
    with pytest.raises(FlowmlError) as err:
        client.delete_experiment_tag(exp_id, "extra")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_duplicate_name_is_resource_already_exists_even_when_deleted(client) -> None:
    exp_id = client.create_experiment("dup")
    with pytest.raises(FlowmlError) as err:
        client.create_experiment("dup")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert err.value.http_status == 400
    client.delete_experiment(exp_id)
    with pytest.raises(FlowmlError) as err:
        client.create_experiment("dup")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_unknown_experiment_is_resource_does_not_exist(client) -> None:
    with pytest.raises(FlowmlError) as err:
        client.get_experiment("424242")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert err.value.http_status == 404
    assert client.get_experiment_by_name("nope") is None


@pytest.mark.parametrize("bad_id", ["abc", "-1", "1;drop table runs", ""])
def test_malformed_experiment_id_is_invalid_parameter(client, bad_id: str) -> None:
    with pytest.raises(FlowmlError) as err:
        client.get_experiment(bad_id)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("bad_name", ["", "   ", "x" * 501])
def test_bad_experiment_names_are_rejected(client, bad_name: str) -> None:
    with pytest.raises(FlowmlError) as err:
        client.create_experiment(bad_name)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("location", ["/tmp/a?b", "/tmp/a#b", "/tmp/a;b", "/tmp/../etc", "runs:/abc/x"])
def test_unsafe_artifact_locations_are_rejected(client, location: str) -> None:
    with pytest.raises(FlowmlError) as err:
        client.create_experiment("loc", artifact_location=location)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_rename(client) -> None:
    exp_id = client.create_experiment("old")
    client.create_experiment("taken")
    client.rename_experiment(exp_id, "new")
    assert client.get_experiment(exp_id).name == "new"
    assert client.get_experiment_by_name("old") is None
    with pytest.raises(FlowmlError) as err:
        client.rename_experiment(exp_id, "taken")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_delete_marks_runs_deleted_and_restore_brings_them_back(client) -> None:
    exp_id = client.create_experiment("to-delete")
    run = client.create_run(exp_id)
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == LifecycleStage.DELETED
    assert client.get_run(run.info.run_id).info.lifecycle_stage == LifecycleStage.DELETED
    with pytest.raises(FlowmlError) as err:
        client.create_run(exp_id)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == LifecycleStage.ACTIVE
    assert client.get_run(run.info.run_id).info.lifecycle_stage == LifecycleStage.ACTIVE


def test_default_experiment_cannot_be_deleted(client) -> None:
    with pytest.raises(FlowmlError) as err:
        client.delete_experiment("0")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_search_experiments_view_types(client) -> None:
    keep = client.create_experiment("keep")
    gone = client.create_experiment("gone")
    client.delete_experiment(gone)
    active = {e.experiment_id for e in client.search_experiments()}
    deleted = {e.experiment_id for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)}
    every = {e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)}
    assert keep in active and "0" in active and gone not in active
    assert deleted == {gone}
    assert every == active | deleted
    named = client.search_experiments(filter_string="name = 'keep'")
    assert [e.experiment_id for e in named] == [keep]
