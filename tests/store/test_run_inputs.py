"""Datasets runs used (MLflow's log-inputs): stored once per experiment, listed once per run."""

from __future__ import annotations

import pytest

from flowml.client.local import SqlBackend
from flowml.entities import Dataset, DatasetInput
from flowml.exceptions import FlowmlError
from flowml.store import gc

TRAIN = Dataset(
    "iris", "d1g3st", "local", '{"uri": "/data/iris.csv"}', '{"mlflow_colspec": []}', '{"rows": 150}'
)


def test_inputs_are_stored_once_and_read_back(flowml_env: str) -> None:
    backend = SqlBackend(flowml_env, "/tmp/unused-artifacts")
    first = backend.create_run("0", "u", None, {}, None).info.run_id
    second = backend.create_run("0", "u", None, {}, None).info.run_id
    context = {"mlflow.data.context": "training"}
    backend.log_inputs(first, [DatasetInput(TRAIN, context)])
    backend.log_inputs(first, [DatasetInput(TRAIN, {"other": "ignored"})])  # already an input: unchanged
    same_data = Dataset("iris", "d1g3st", "local", "elsewhere")  # same name + digest: the stored one
    backend.log_inputs(second, [DatasetInput(same_data, {}), DatasetInput(Dataset("b", "x", "code", "s"))])
    links = backend.run_links([first, second, "f" * 32])
    assert links[first].dataset_inputs == (DatasetInput(TRAIN, context),)
    assert [i.dataset for i in links[second].dataset_inputs] == [Dataset("b", "x", "code", "s"), TRAIN]
    assert "f" * 32 not in links
    backend.close()


@pytest.mark.parametrize(
    "bad",
    [
        DatasetInput(Dataset("", "d", "local", "s")),
        DatasetInput(Dataset("n", "d" * 37, "local", "s")),
        DatasetInput(Dataset("n", "d", "local", "s"), {"k" * 256: "v"}),
        DatasetInput(Dataset("n", "d", "local", "s"), {"k": "v" * 501}),
    ],
)
def test_bad_inputs_are_refused_and_nothing_is_written(flowml_env: str, bad: DatasetInput) -> None:
    backend = SqlBackend(flowml_env, "/tmp/unused-artifacts")
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    with pytest.raises(FlowmlError) as err:
        backend.log_inputs(run_id, [DatasetInput(TRAIN), bad])
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert backend.run_links([run_id]) == {}
    backend.close()


def test_deleted_runs_refuse_inputs_and_gc_takes_them(flowml_env: str) -> None:
    backend = SqlBackend(flowml_env, "/tmp/unused-artifacts")
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    backend.log_inputs(run_id, [DatasetInput(TRAIN)])
    backend.delete_run(run_id)
    with pytest.raises(FlowmlError) as err:
        backend.log_inputs(run_id, [DatasetInput(TRAIN)])
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    backend.db.write(lambda s: gc.hard_delete(s, run_ids=[run_id], model_ids=[], experiment_ids=[]))
    assert backend.run_links([run_id]) == {}
    with pytest.raises(FlowmlError) as missing:
        backend.log_inputs(run_id, [DatasetInput(TRAIN)])
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    backend.close()


def test_logged_models_as_inputs_are_checked_listed_once_and_go_with_the_model(flowml_env: str) -> None:
    backend = SqlBackend(flowml_env, "/tmp/unused-artifacts")
    run_id = backend.create_run("0", "u", None, {}, None).info.run_id
    first, second = (backend.logged_models.create("0", n, None, {}, {}, None).model_id for n in "ab")
    with pytest.raises(FlowmlError) as err:
        backend.log_inputs(run_id, [DatasetInput(TRAIN)], [first, "m-" + "0" * 32])
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert backend.run_links([run_id]) == {}  # neither the dataset nor the first model was written
    backend.log_inputs(run_id, [], [second, first, second])
    backend.log_inputs(run_id, [DatasetInput(TRAIN)], [first])
    backend.logged_models.log_outputs(run_id, [(second, 3)])
    links = backend.run_links([run_id, "f" * 32])
    assert set(links) == {run_id}
    assert links[run_id].model_inputs == tuple(sorted([first, second]))
    assert links[run_id].dataset_inputs == (DatasetInput(TRAIN),)
    assert links[run_id].model_outputs == ((second, 3),)
    assert backend.run_links([run_id], model_inputs=False)[run_id].model_inputs == ()
    backend.logged_models.delete(first)
    backend.db.write(lambda s: gc.hard_delete(s, run_ids=[], model_ids=[first], experiment_ids=[]))
    assert backend.run_links([run_id])[run_id].model_inputs == (second,)
    backend.close()
