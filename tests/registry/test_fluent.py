"""Fluent ``register_model``."""

from __future__ import annotations

import pytest

import flowml
from flowml.exceptions import FlowmlError
from flowml.registry import register_model


def test_register_model_from_a_run_creates_the_model(flowml_env: str) -> None:
    with flowml.start_run() as run:
        flowml.log_metric("rmse", 0.4)
    mv = register_model(f"runs:/{run.info.run_id}/model", "churn", tags={"stage": "dev"})
    assert (mv.name, mv.version, mv.run_id, mv.tags) == ("churn", "1", run.info.run_id, {"stage": "dev"})
    assert mv.source == f"{run.info.artifact_uri}/model"
    again = register_model(f"runs:/{run.info.run_id}/model", "churn")
    assert again.version == "2"
    client = flowml.FlowmlClient()
    assert [v.version for v in client.search_model_versions("name = 'churn'")] == ["2", "1"]
    assert register_model("models:/churn/1", "churn-copy").source == "models:/churn/1"


def test_register_model_refuses_a_lookalike_name_and_foreign_sources(flowml_env: str) -> None:
    with flowml.start_run() as run:
        pass
    register_model(f"runs:/{run.info.run_id}/model", "Churn")
    with pytest.raises(FlowmlError) as err:
        register_model(f"runs:/{run.info.run_id}/model", "churn")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(FlowmlError) as err:
        register_model("file:///etc", "Churn")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
