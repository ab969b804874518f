"""MLflow's table artifacts (``log_table`` / ``load_table``) through the SQL store and over REST: the
file and the ``mlflow.loggedArtifacts`` tag are MLflow's, so MLflow's own reader reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from flowml.exceptions import FlowmlError

ROWS = {"inputs": ["What is MLflow?", "What is flowml?"], "score": [0.5, 0.75]}


def test_log_table_appends_and_load_table_joins_runs(client, tmp_path: Path) -> None:
    exp = client.create_experiment("tables")
    first = client.create_run(exp).info.run_id
    second = client.create_run(exp).info.run_id
    client.create_run(exp)  # a run without the table is left out
    client.log_table(first, ROWS, "eval/results.json")
    client.log_table(
        first, pd.DataFrame({"inputs": ["Why?"], "score": [1.0]}), "eval/results.json"
    )  # appended
    client.log_table(second, {"inputs": "Alone?", "score": 0.25}, "eval/results.json")  # scalars: one row

    # The stored file is pandas' split orientation without index, as MLflow reads it back.
    local = client.download_artifacts(first, "eval/results.json", str(tmp_path))
    assert pd.read_json(local, orient="split").to_dict("list") == {
        "inputs": ["What is MLflow?", "What is flowml?", "Why?"],
        "score": [0.5, 0.75, 1.0],
    }
    tag = json.loads(client.get_run(first).data.tags["mlflow.loggedArtifacts"])
    assert tag == [{"path": "eval/results.json", "type": "table"}]  # once, though logged twice

    both = client.load_table(exp, "eval/results.json", extra_columns=["run_id"])
    assert sorted(zip(both["inputs"], both["run_id"], strict=True)) == sorted(
        [("What is MLflow?", first), ("What is flowml?", first), ("Why?", first), ("Alone?", second)]
    )
    only = client.load_table(exp, "eval/results.json", run_ids=[second])
    assert only.to_dict("list") == {"inputs": ["Alone?"], "score": [0.25]}


def test_parquet_tables_and_clear_errors(client) -> None:
    run_id = client.create_run("0").info.run_id
    client.log_table(run_id, ROWS, "t.parquet")
    assert client.load_table("0", "t.parquet")["score"].tolist() == [0.5, 0.75]
    for bad_data, bad_file in ((ROWS, "t.csv"), ([1, 2], "t.json")):
        with pytest.raises(FlowmlError) as err:
            client.log_table(run_id, bad_data, bad_file)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(FlowmlError) as err:
        client.load_table("0", "missing.json")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert json.loads(client.get_run(run_id).data.tags["mlflow.loggedArtifacts"]) == [
        {"path": "t.parquet", "type": "table"}
    ]
