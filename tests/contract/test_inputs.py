"""What a run used and produced (MLflow's ``log_inputs``, ``run.inputs``, ``run.outputs``): the same
through the SQL store and over REST, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from flowml.client.local import SqlBackend
from flowml.entities import Dataset, DatasetInput, InputTag, LoggedModelInput, LoggedModelOutput
from flowml.exceptions import FlowmlError

IRIS = Dataset(
    "iris", "1f2e3d4c", "local", '{"uri": "/data/iris.csv"}', '{"mlflow_colspec": []}', '{"num_rows": 150}'
)
WINE = Dataset("wine", "5a6b7c8d", "code", '{"tags": {}}')


def test_inputs_come_back_with_the_run_and_in_search(client, flowml_env: str) -> None:
    run_id = client.create_run("0").info.run_id
    other = client.create_run("0").info.run_id
    store = SqlBackend(flowml_env, "/tmp/unused-artifacts")
    try:
        model = store.logged_models.create("0", "m", run_id, {}, {}, None).model_id
        store.logged_models.log_outputs(run_id, [(model, 3)])
    finally:
        store.close()
    client.log_inputs(
        run_id,
        datasets=[DatasetInput(WINE, {"mlflow.data.context": "eval"}), DatasetInput(IRIS)],
        models=[LoggedModelInput(model)],
    )

    run = client.get_run(run_id)
    assert run.inputs.dataset_inputs == [
        DatasetInput(IRIS),
        DatasetInput(WINE, [InputTag("mlflow.data.context", "eval")]),
    ]
    assert run.inputs.model_inputs == [LoggedModelInput(model)]
    assert run.outputs.model_outputs == [LoggedModelOutput(model, 3)]
    assert client.get_run(other).inputs.dataset_inputs == []
    as_dict = run.to_dictionary()
    assert as_dict["inputs"]["dataset_inputs"][1] == {
        "dataset": {"name": "wine", "digest": "5a6b7c8d", "source_type": "code", "source": '{"tags": {}}',
                    "schema": None, "profile": None},
        "tags": {"mlflow.data.context": "eval"},
    }  # fmt: skip
    assert as_dict["inputs"]["model_inputs"] == [{"model_id": model}]
    assert as_dict["outputs"]["model_outputs"] == [{"model_id": model, "step": 3}]

    found = {r.info.run_id: r for r in client.search_runs(["0"])}
    assert found[run_id].inputs.dataset_inputs == run.inputs.dataset_inputs
    assert found[run_id].inputs.model_inputs == []  # MLflow's search leaves model inputs out
    assert found[run_id].outputs == run.outputs
    assert found[other].inputs.dataset_inputs == [] and found[other].outputs.model_outputs == []


def test_bad_inputs_are_refused_whole(client) -> None:
    run_id = client.create_run("0").info.run_id
    too_long = DatasetInput(Dataset("n", "d" * 37, "local", "s"))
    with pytest.raises(FlowmlError) as err:
        client.log_inputs(run_id, datasets=[DatasetInput(IRIS), too_long])
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(FlowmlError) as err:
        client.log_inputs(run_id, datasets=[IRIS])  # a dataset, not a DatasetInput
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(FlowmlError) as err:
        client.log_inputs(run_id, models=[LoggedModelInput("m-" + "0" * 32)])
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_run(run_id).inputs.dataset_inputs == []
    with pytest.raises(FlowmlError) as err:
        client.log_inputs("0123456789abcdef0123456789abcdef", datasets=[DatasetInput(IRIS)])
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_mlflow_style_input_tags_are_accepted(client) -> None:
    """MLflow's documented ``client.log_inputs(run_id, [DatasetInput(dataset, tags=[InputTag(...)])])``;
    MLflow's own entities (anything with ``key``/``value``) work as tags too."""
    from mlflow.entities import InputTag as MlflowInputTag

    run_id = client.create_run("0").info.run_id
    tags = [InputTag("mlflow.data.context", "training"), MlflowInputTag(key="split", value="a")]
    client.log_inputs(run_id, [DatasetInput(IRIS, tags)])
    (item,) = client.get_run(run_id).inputs.dataset_inputs
    assert sorted((t.key, t.value) for t in item.tags) == [
        ("mlflow.data.context", "training"),
        ("split", "a"),
    ]
    assert all(isinstance(t, InputTag) for t in item.tags)
