"""A database connection lost under the server (a PostgreSQL restart, an admin's kill) is a 503
the client may retry — never a 500 — and the pool reconnects for the retry."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest

from flowml.client import FlowmlClient
from tests.fixtures.server import serve_in_thread

pytestmark = pytest.mark.postgres


def _kill_connections(uri: str) -> None:
    with psycopg.connect(uri.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def test_a_lost_connection_is_503_and_the_retry_succeeds(postgres_uri: str, tmp_path: Path) -> None:
    with serve_in_thread(postgres_uri, str(tmp_path / "artifacts")) as url:
        api = f"{url}/api/2.0/mlflow"
        created = httpx.post(f"{api}/experiments/create", json={"name": "kept"})
        experiment_id = created.json()["experiment_id"]
        _kill_connections(postgres_uri)
        lost = httpx.get(f"{api}/experiments/get", params={"experiment_id": experiment_id})
        assert lost.status_code == 503, lost.text
        assert lost.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        again = httpx.get(f"{api}/experiments/get", params={"experiment_id": experiment_id})
        assert again.status_code == 200 and again.json()["experiment"]["name"] == "kept"
        # flowml's REST client retries the 503 of an idempotent call by itself
        _kill_connections(postgres_uri)
        assert FlowmlClient(url).get_experiment(experiment_id).name == "kept"
