"""Metrics of MLflow 3 logged models (points logged with a ``model_id``): stored per model, searched
and ordered as MLflow does, validated before anything is written, and gone with their run or model."""

from __future__ import annotations

import math

import pytest

from flowml.client.local import SqlBackend
from flowml.entities import ModelMetric
from flowml.exceptions import FlowmlError
from flowml.store import gc
from flowml.store.logged_models import ModelOrder


def _point(
    key: str, value: float, step: int, model_id: str, run_id: str, dataset: str | None = None
) -> ModelMetric:
    return ModelMetric(key, value, 1000 + step, step, model_id, run_id, dataset, "dg" if dataset else None)


@pytest.fixture
def backend(flowml_env: str) -> SqlBackend:
    return SqlBackend(flowml_env, "/tmp/unused-artifacts")


def _names(backend: SqlBackend, **kwargs: object) -> list[str]:
    search = backend.logged_models.search
    args = {"filter_string": None, "max_results": None, "order_by": None, "page_token": None} | kwargs
    return [m.name for m in search(["0"], **args)]  # type: ignore[arg-type]


def test_points_are_kept_once_and_read_back_with_their_model(backend: SqlBackend) -> None:
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    model = backend.logged_models.create("0", "m", run_id, {}, {}, None)
    points = [
        _point("acc", 0.5, 1, model.model_id, run_id),
        _point("acc", math.nan, 2, model.model_id, run_id, "eval"),
        _point("acc", math.inf, 2, model.model_id, run_id),  # same step, no dataset: another point
    ]
    backend.logged_models.log_metrics(run_id, points)
    backend.logged_models.log_metrics(run_id, points[:1])  # the same point again: kept once
    backend.logged_models.log_metrics(
        run_id, [_point("acc", 0.4, 1, model.model_id, run_id)]
    )  # another value
    got = backend.logged_models.get(model.model_id).metrics
    assert [(m.key, m.step, m.dataset_name, m.dataset_digest, m.run_id) for m in got] == [
        ("acc", 1, None, None, run_id),
        ("acc", 1, None, None, run_id),
        ("acc", 2, None, None, run_id),
        ("acc", 2, "eval", "dg", run_id),
    ]
    assert [m.value for m in got[:3]] == [0.4, 0.5, math.inf] and math.isnan(got[3].value)
    # as in MLflow, a model's points are the run's metrics too
    history = backend.get_metric_history(run_id, "acc", None, None)
    assert sorted((m.step, str(m.value)) for m in history) == [(1, "0.4"), (1, "0.5"), (2, "inf"), (2, "nan")]
    backend.close()


def test_bad_points_are_refused_and_nothing_is_written(backend: SqlBackend) -> None:
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    model = backend.logged_models.create("0", "m", None, {}, {}, None)
    good = _point("acc", 0.5, 1, model.model_id, run_id)
    too_long = ModelMetric("acc", 0.5, 1, 1, model.model_id, run_id, "d" * 501, None)
    for bad, code in [
        (_point("acc", 0.5, 1, "m-" + "0" * 32, run_id), "RESOURCE_DOES_NOT_EXIST"),
        (_point("../acc", 0.5, 1, model.model_id, run_id), "INVALID_PARAMETER_VALUE"),
        (too_long, "INVALID_PARAMETER_VALUE"),
    ]:
        with pytest.raises(FlowmlError) as err:
            backend.logged_models.log_metrics(run_id, [good, bad])
        assert err.value.error_code == code
    assert backend.get_metric_history(run_id, "acc", None, None) == []  # nor the run's metrics
    backend.delete_run(run_id)
    with pytest.raises(FlowmlError) as err:
        backend.logged_models.log_metrics(run_id, [good])
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert backend.logged_models.get(model.model_id).metrics == ()
    backend.close()


def test_a_deleted_model_still_takes_points(backend: SqlBackend) -> None:
    """MLflow links points to a logged model whatever its state (a client's active model may be gone)."""
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    model_id = backend.logged_models.create("0", "m", None, {}, {}, None).model_id
    backend.logged_models.delete(model_id)
    backend.logged_models.log_metrics(run_id, [_point("acc", 0.5, 1, model_id, run_id)])
    backend.log_inputs(run_id, [], [model_id])
    assert backend.run_links([run_id])[run_id].model_inputs == (model_id,)
    count = backend.db.write(
        lambda s: s.connection().exec_driver_sql("SELECT count(*) FROM logged_model_metrics").scalar()
    )
    assert count == 1
    backend.close()


def test_search_filters_and_orders_by_metrics_like_mlflow(backend: SqlBackend) -> None:
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    ids = {name: backend.logged_models.create("0", name, None, {}, {}, None).model_id for name in "abcd"}
    log = backend.logged_models.log_metrics
    log(run_id, [_point("acc", 0.95, 1, ids["a"], run_id), _point("acc", 0.6, 2, ids["a"], run_id, "eval")])
    log(run_id, [_point("acc", 0.8, 1, ids["b"], run_id, "eval")])
    log(run_id, [_point("acc", math.nan, 1, ids["c"], run_id)])
    # any point matches; NaN matches only !=; newest model first when nothing else orders
    assert _names(backend, filter_string="metrics.acc > 0.9") == ["a"]
    assert _names(backend, filter_string="metrics.acc < 0.9") == ["b", "a"]
    assert _names(backend, filter_string="metrics.acc != 0.8") == ["c", "a"]
    assert _names(backend, filter_string="metrics.acc > 0.7", datasets=[{"dataset_name": "eval"}]) == ["b"]
    assert _names(backend, datasets=[{"dataset_name": "eval", "dataset_digest": "dg"}]) == ["b", "a"]
    assert _names(backend, datasets=[{"dataset_name": "eval", "dataset_digest": "other"}]) == []
    # ordering uses the latest point (a: 0.6 at step 2); NaN and missing values last both ways
    assert _names(backend, order_by=["metrics.acc DESC"]) == ["b", "a", "d", "c"]
    assert _names(backend, order_by=["metrics.acc ASC"]) == ["a", "b", "d", "c"]
    by_first = [ModelOrder("metrics.acc", False, dataset_name="eval")]
    assert _names(backend, order_by=by_first) == ["b", "a", "d", "c"]
    assert _names(backend, order_by=[ModelOrder("name", False)]) == ["d", "c", "b", "a"]
    log(run_id, [_point("my acc", 0.1, 1, ids["c"], run_id)])  # MLflow's field_name form takes the key as is
    assert _names(backend, order_by=[ModelOrder("metrics.my acc", False), ModelOrder("creation_time")]) == [
        "c",
        "a",
        "b",
        "d",
    ]
    # string clauses as in run search, on both databases: LIKE is case-sensitive, ILIKE is not
    assert _names(backend, filter_string="name LIKE 'A%'") == []
    assert _names(backend, filter_string="name ILIKE 'A%' AND name != 'b'") == ["a"]
    for bad in ["metrics.acc LIKE '0.9'", "metrics.acc > 'x'", "datasets.name = 'eval'"]:
        with pytest.raises(FlowmlError) as err:
            _names(backend, filter_string=bad)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(FlowmlError) as err:
        _names(backend, order_by=[ModelOrder("params.lr")])
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(FlowmlError) as err:
        _names(backend, datasets=[{"dataset_digest": "dg"}])
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    backend.close()


def test_points_go_with_their_run_and_with_their_model(backend: SqlBackend) -> None:
    keep = backend.create_run("0", "u", None, {}, None).info.run_id
    gone = backend.create_run("0", "u", None, {}, None).info.run_id
    model = backend.logged_models.create("0", "m", None, {}, {}, None).model_id
    other = backend.logged_models.create("0", "o", None, {}, {}, None).model_id
    for run_id in (keep, gone):
        backend.logged_models.log_metrics(run_id, [_point("acc", 0.5, 1, model, run_id)])
    backend.logged_models.log_metrics(keep, [_point("acc", 0.5, 1, other, keep)])
    backend.delete_run(gone)
    backend.logged_models.delete(other)
    backend.db.write(lambda s: gc.hard_delete(s, run_ids=[gone], model_ids=[other], experiment_ids=[]))
    assert [m.run_id for m in backend.logged_models.get(model).metrics] == [keep]
    count = backend.db.write(
        lambda s: s.connection().exec_driver_sql("SELECT count(*) FROM logged_model_metrics").scalar()
    )
    assert count == 1
    backend.close()
