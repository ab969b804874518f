"""Metric points never outlive their run, although ``metrics`` has no foreign key on PostgreSQL.

The write path locks each run it writes to until its group commits, and gc's hard delete removes a
run's metrics after the run's row. Here a log-batch transaction is held open while another thread
soft-deletes and hard-deletes the same run: the delete must wait for the batch and then take its
points with the run. A group of metric points only is written and committed in one exchange
(``_pg_batch.write_points``): there the delete is held open instead, and the batch must wait for it
and then be refused, writing nothing.
"""

from __future__ import annotations

import threading

from sqlalchemy import text

from flowml.client import FlowmlClient
from flowml.entities import LifecycleStage, Metric, Param
from flowml.exceptions import InvalidParameterValue
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
    # With a param, the group takes the path whose transaction the test can hold open.
    points = [Metric("loss", float(i), 1, i) for i in range(50)]
    batch = run_data.prepare_batch(doomed, points, [Param("p", "v")])
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


def test_a_metric_batch_racing_a_run_delete_waits_for_it_and_is_refused(flowml_env: str) -> None:
    client = FlowmlClient()
    run_id = client.create_run("0").info.run_id
    db = client.backend.db
    deleting, release = threading.Event(), threading.Event()
    outcome: list[BaseException | None] = []

    def hold_a_delete_open() -> None:
        def write(session):  # type: ignore[no-untyped-def]
            session.execute(
                text("UPDATE runs SET lifecycle_stage = :s WHERE run_id = :r"),
                {"s": LifecycleStage.DELETED, "r": run_id},
            )
            deleting.set()
            assert release.wait(30)

        db.write(write)

    def log() -> None:
        try:
            client.log_batch(run_id, metrics=[Metric("loss", float(i), 1, i) for i in range(50)])
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - checked by the main thread
            outcome.append(exc)

    deleter = threading.Thread(target=hold_a_delete_open)
    deleter.start()
    assert deleting.wait(30)
    logger = threading.Thread(target=log)
    logger.start()
    try:
        logger.join(1.0)
        assert not outcome, "the batch did not wait for the uncommitted delete of its run"
    finally:
        release.set()
        deleter.join(30)
        logger.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], InvalidParameterValue), outcome
    assert "must be in the 'active' state" in str(outcome[0])
    assert _count(client, "metrics", run_id) == 0
    assert _count(client, "latest_metrics", run_id) == 0
