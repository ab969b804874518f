"""MLflow's fluent management calls, written as MLflow users write them (``import flowml as mlflow``):
deleting/restoring, a nested run's parent, and the searches that page through every result."""

from __future__ import annotations

import pytest

import flowml as mlflow
from flowml.client import FlowmlClient
from flowml.entities import ViewType


def test_delete_and_restore_experiments_and_runs(flowml_env: str) -> None:
    exp_id = mlflow.create_experiment("to-delete")
    mlflow.set_experiment(experiment_id=exp_id)
    mlflow.set_experiment_tag("team", "a")
    mlflow.delete_experiment_tag("team")
    assert "team" not in mlflow.get_experiment(exp_id).tags
    with mlflow.start_run() as run:
        pass
    mlflow.delete_run(run.info.run_id)
    assert mlflow.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    assert mlflow.search_runs([exp_id], output_format="list") == []
    mlflow.restore_run(run.info.run_id)
    assert mlflow.get_run(run.info.run_id).info.lifecycle_stage == "active"
    mlflow.delete_experiment(exp_id)
    assert mlflow.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert [e.name for e in mlflow.search_experiments(view_type=ViewType.DELETED_ONLY)] == ["to-delete"]
    mlflow.restore_experiment(exp_id)
    assert mlflow.get_experiment(exp_id).lifecycle_stage == "active"


def test_get_parent_run(flowml_env: str) -> None:
    with mlflow.start_run() as parent, mlflow.start_run(nested=True) as child:
        pass
    found = mlflow.get_parent_run(child.info.run_id)
    assert found is not None and found.info.run_id == parent.info.run_id
    assert mlflow.get_parent_run(parent.info.run_id) is None


def test_fluent_searches_page_through_everything(flowml_env: str) -> None:
    for i in range(1, 1203):  # more than one page of experiments (MLflow's fluent page is 1000)
        FlowmlClient().create_experiment(f"exp-{i:04d}")
    everything = mlflow.search_experiments()
    assert len(everything) == 1203  # with Default
    assert len({e.experiment_id for e in everything}) == 1203
    assert [e.name for e in mlflow.search_experiments(max_results=3, order_by=["name DESC"])] == [
        "exp-1202",
        "exp-1201",
        "exp-1200",
    ]
    found = mlflow.search_experiments(filter_string="name LIKE 'exp-000%'")
    assert sorted(e.name for e in found) == [f"exp-000{i}" for i in range(1, 10)]
    # MLflow's default order: newest first, ties (same millisecond) by id
    assert found == sorted(found, key=lambda e: (-(e.creation_time or 0), int(e.experiment_id)))


def test_registry_searches_and_version_tags(flowml_env: str) -> None:
    client = FlowmlClient()
    for i in range(105):  # more than MLflow's fluent page of 100 registered models
        client.create_registered_model(f"model-{i:03d}")
    with mlflow.start_run() as run:
        pass
    for _ in range(3):
        client.create_model_version("model-007", f"runs:/{run.info.run_id}/model", run.info.run_id)
    assert len(mlflow.search_registered_models()) == 105
    assert [
        m.name for m in mlflow.search_registered_models(filter_string="name LIKE 'model-00%'", max_results=2)
    ] == [
        "model-000",
        "model-001",
    ]
    mlflow.set_model_version_tag("model-007", "2", key="validated", value=True)
    versions = mlflow.search_model_versions(
        filter_string="name = 'model-007'", order_by=["version_number ASC"]
    )
    assert [(v.version, dict(v.tags)) for v in versions] == [
        ("1", {}),
        ("2", {"validated": "True"}),
        ("3", {}),
    ]
    assert [v.version for v in mlflow.search_model_versions(filter_string="tags.validated = 'True'")] == ["2"]


def test_tracking_uri_set_and_mlflow_exception(flowml_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert mlflow.is_tracking_uri_set()  # the test store is configured through FLOWML_TRACKING_URI
    monkeypatch.delenv("FLOWML_TRACKING_URI")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert not mlflow.is_tracking_uri_set()
    monkeypatch.setenv("FLOWML_TRACKING_URI", flowml_env)
    with pytest.raises(mlflow.MlflowException) as err:
        mlflow.get_run("0" * 32)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert mlflow.exceptions.MlflowException is mlflow.MlflowException
