"""PostgreSQL connections that die under the pool (a database restart, an admin's kill, a proxy's
idle timeout) cost no request: writes found on a dead connection are retried on a new one, and a
connection that sat idle is pinged before it is handed out."""

from __future__ import annotations

import time

import psycopg
import pytest

from flowml.client.local import SqlBackend
from flowml.entities import Metric
from flowml.store import db as db_module

pytestmark = pytest.mark.postgres


def _kill_other_connections(uri: str) -> int:
    with psycopg.connect(uri.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_writes_on_connections_killed_moments_ago_are_retried(postgres_uri: str, artifact_root: str) -> None:
    backend = SqlBackend(postgres_uri, artifact_root)
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    backend.log_batch(run_id, [Metric("loss", 1.0, 1, 0)], [], [])
    assert _kill_other_connections(postgres_uri) >= 1
    # Within the idle window nothing pings: each write meets its dead connection and starts over.
    backend.log_batch(run_id, [Metric("loss", 0.5, 2, 1)], [], [])  # the driver-level path (COPY)
    other = backend.create_run("0", "u", None, {}, None).info.run_id  # the SQLAlchemy path
    assert [p.value for p in backend.get_metric_history(run_id, "loss", None, None)] == [1.0, 0.5]
    assert backend.get_run(other).info.run_id == other
    backend.close()


def test_a_connection_killed_while_idle_is_replaced_before_use(
    postgres_uri: str, artifact_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.2)
    backend = SqlBackend(postgres_uri, artifact_root)
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    assert _kill_other_connections(postgres_uri) >= 1
    time.sleep(0.3)
    assert backend.get_run(run_id).info.run_id == run_id  # a read: nothing would retry it
    backend.close()
