"""Metric points never outlive their run, although ``metrics`` has no foreign key on PostgreSQL.

The write path locks each run it writes to (``FOR KEY SHARE``) until its group commits, and gc's
hard delete removes a run's metrics after the run's row. Here a log-batch transaction is held open
while another thread soft-deletes and hard-deletes the same run: the delete must wait for the batch
and then take its points with the run.
"""

from __future__ import annotations

import threading

from sqlalchemy import text

from flowml.client import FlowmlClient
from flowml.entities import Metric
from flowml.store import gc, run_data


def _count(client: FlowmlClient, table: str, run_id: str) -> int:
    with client.backend.db.read() as session:
        query = text(f"SELECT count(*) FROM {table} WHERE run_id = :r")
        return int(session.execute(query, {"r": run_id}).scalar_one())


def test_a_hard_delete_racing_a_log_batch_leaves_no_points_behind(flowml_env: str) -> None:
    client = FlowmlClient()
    kept = client.create_run("0").info.run_id
    doomed = client.create_run("0").info.run_id
    client.log_batch(kept, metrics=[Metric("loss", 1.0, 1, 0)])
    db = client.backend.db
    batch = run_data.prepare_batch(doomed, [Metric("loss", float(i), 1, i) for i in range(50)])
    written, release, deleted = threading.Event(), threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def hold_a_batch_open() -> None:
        def write(session):  # type: ignore[no-untyped-def]
            assert run_data.write_batches(session, [batch]) == [None]
            written.set()
            assert release.wait(30)

        try:
            db.write(write)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    def delete_the_run() -> None:
        try:
            client.delete_run(doomed)
            db.write(lambda s: gc.hard_delete(s, run_ids=[doomed], model_ids=[], experiment_ids=[]))
            deleted.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    writer = threading.Thread(target=hold_a_batch_open)
    writer.start()
    assert written.wait(30)
    deleter = threading.Thread(target=delete_the_run)
    deleter.start()
    try:
        assert not deleted.wait(1.0), "the run was deleted under an uncommitted log-batch"
    finally:
        release.set()
        writer.join(30)
        deleter.join(30)
    assert not failures, failures
    assert deleted.is_set()
    assert _count(client, "runs", doomed) == 0
    assert _count(client, "metrics", doomed) == 0
    assert _count(client, "latest_metrics", doomed) == 0
    assert _count(client, "metrics", kept) == 1  # other runs' points stay
