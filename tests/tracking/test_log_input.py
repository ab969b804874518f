"""``mlflow.log_input`` as MLflow users write it (``import flowml as mlflow``): datasets from
``mlflow.data`` recorded as the run's inputs, read back from ``run.inputs`` — the same entity MLflow
itself would have logged for the same data."""

from __future__ import annotations

import mlflow as real_mlflow
import numpy as np
import pandas as pd
import pytest

import flowml as mlflow
from flowml.entities import DatasetInput, LoggedModelInput
from flowml.exceptions import FlowmlError

FRAME = pd.DataFrame({"alcohol": [13.2, 12.4, 14.1], "hue": [1.04, 0.93, 1.1], "y": [0, 1, 2]})


def _entity_fields(dataset: object) -> tuple[object, ...]:
    fields = ("name", "digest", "source_type", "source", "schema", "profile")
    return tuple(getattr(dataset, f) for f in fields)


def test_log_input_records_the_dataset_mlflow_would(flowml_env: str) -> None:
    with mlflow.start_run() as run:
        train = mlflow.data.from_pandas(FRAME, source="/data/wine.csv", name="wine", targets="y")
        mlflow.log_input(train, context="training", tags={"split": "train"})
    (item,) = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert [(t.key, t.value) for t in item.tags] == [("split", "train"), ("mlflow.data.context", "training")]
    reference = real_mlflow.data.from_pandas(FRAME, source="/data/wine.csv", name="wine", targets="y")
    assert _entity_fields(item.dataset) == _entity_fields(reference._to_mlflow_entity())
    assert item.dataset.source_type == "local" and item.dataset.name == "wine"


def test_several_inputs_each_kept_once(flowml_env: str) -> None:
    with mlflow.start_run() as run:
        features = np.arange(12.0).reshape(4, 3)
        mlflow.log_inputs(
            [mlflow.data.from_numpy(features, name="feats"), mlflow.data.from_pandas(FRAME, name="frame")],
            contexts=["training", ""],  # an empty context is no tag, as in MLflow
            tags_list=[None, None],
        )
        mlflow.log_input(mlflow.data.from_pandas(FRAME, name="frame"), context="training")  # again: kept once
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.tag_dict()) for i in inputs] == [
        ("feats", {"mlflow.data.context": "training"}),
        ("frame", {}),  # the first logging of a dataset in a run is the one kept
    ]


def test_a_dataset_made_by_mlflow_itself_is_accepted(flowml_env: str) -> None:
    with mlflow.start_run() as run:
        mlflow.log_input(real_mlflow.data.from_pandas(FRAME, name="theirs"), context="eval")
    (item,) = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert item.dataset.name == "theirs" and item.tag_dict() == {"mlflow.data.context": "eval"}
    assert isinstance(item, DatasetInput)


def test_bad_calls_are_clear_errors_and_log_nothing(flowml_env: str) -> None:
    with mlflow.start_run() as run:
        with pytest.raises(FlowmlError, match=r"flowml\.data") as err:
            mlflow.log_input(FRAME)  # a DataFrame, not a dataset
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
        with pytest.raises(FlowmlError, match="same length"):  # MLflow asks for all three lists
            mlflow.log_inputs([mlflow.data.from_pandas(FRAME)], contexts=["a"])
        with pytest.raises(FlowmlError, match="`dataset` must be specified"):
            mlflow.log_input(context="training")
        with pytest.raises(FlowmlError) as err:
            mlflow.log_input(model=LoggedModelInput("m-" + "0" * 32))
        assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert mlflow.get_run(run.info.run_id).inputs.dataset_inputs == []
