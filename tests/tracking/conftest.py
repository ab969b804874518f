"""Tracking-test fixtures: a store written by the real ``mlflow`` package, to compare flowml against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class MlflowStore:
    """A SQLite tracking store of the real mlflow package (one per session: creating it takes ~3 s)."""

    uri: str
    client: Any  # mlflow.MlflowClient
    experiment_id: str

    def new_run(self) -> Any:
        return self.client.create_run(self.experiment_id)


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> MlflowStore:
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow-reference")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("reference", artifact_location=str(root / "artifacts"))
    return MlflowStore(uri, client, experiment_id)
