"""MLflow 3's model metrics through the fluent API and the client: ``log_metric(model_id=, dataset=)``,
metrics at the step of a logged model, ``MlflowClient.log_metric(model_id=, dataset_name=, dataset_digest=)``.
The same script runs with the real ``mlflow`` package and as ``import flowml as mlflow`` (SQL store, and
the REST client against a live ``flowml server``): the logged models' metrics and the run's inputs and
outputs must be the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.scripts import script_json

pytest.importorskip("mlflow")

_SCRIPT = """
import json, sys
{imports}
import pandas as pd
from sklearn.linear_model import LinearRegression

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("model-metrics")
df = pd.DataFrame({{"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]}})
lr = LinearRegression().fit(df[["x"]], df["y"])
with mlflow.start_run() as run:
    ds = mlflow.data.from_pandas(df, name="eval")
    mlflow.log_metric("before", 0.5)                      # copied onto the model by log_model
    info = mlflow.sklearn.log_model(lr, name="model")     # an output at step 0
    mlflow.log_metric("after", 1.0)                       # step 0: the model's too
    mlflow.log_metric("other_step", 2.0, step=5)          # not the model's
    mlflow.log_metrics({{"acc": 0.9, "f1": 0.8}}, model_id=info.model_id, dataset=ds, step=5)
    ext = mlflow.initialize_logged_model(name="ext")      # not the run's output: becomes its input
    mlflow.log_metric("foreign", 3.0, model_id=ext.model_id, dataset=ds)
    mlflow.MlflowClient().log_metric(
        run.info.run_id, "client_m", 7.0, model_id=info.model_id, dataset_name="dn", dataset_digest="dd"
    )
names = {{info.model_id: "model", ext.model_id: "ext"}}
out = {{}}
for model_id, name in names.items():
    rid = run.info.run_id
    out[name] = sorted(
        [m.key, m.value, m.step, m.dataset_name, m.dataset_digest, m.run_id == rid]
        for m in mlflow.get_logged_model(model_id).metrics or []
    )
stored = mlflow.get_run(run.info.run_id)
out["run_metrics"] = sorted(stored.data.metrics.items())
out["dataset_inputs"] = sorted([i.dataset.name, i.dataset.digest] for i in stored.inputs.dataset_inputs)
out["model_inputs"] = sorted(names.get(i.model_id, "?") for i in stored.inputs.model_inputs)
out["model_outputs"] = sorted([names.get(o.model_id, "?"), o.step] for o in stored.outputs.model_outputs)
print(json.dumps(out, sort_keys=True))
"""


def _run(imports: str, tracking_uri: str, cwd: Path) -> Any:
    return script_json(_SCRIPT.format(imports=imports), [tracking_uri], cwd=cwd, timeout=180)


def test_model_metrics_as_mlflow_records_them(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "f").mkdir()
    expected = _run("import mlflow", f"sqlite:///{tmp_path / 'm' / 'mlflow.db'}", tmp_path / "m")
    assert expected["model"] == [
        ["acc", 0.9, 5, "eval", expected["dataset_inputs"][0][1], True],
        ["after", 1.0, 0, None, None, True],
        ["before", 0.5, 0, None, None, True],
        ["client_m", 7.0, 0, "dn", "dd", True],
        ["f1", 0.8, 5, "eval", expected["dataset_inputs"][0][1], True],
    ]  # what the script exercises, as MLflow 3.17 records it
    got = _run("import flowml as mlflow", f"sqlite:///{tmp_path / 'f' / 'flowml.db'}", tmp_path / "f")
    assert got == expected

    from tests.fixtures.server import serve_in_thread

    (tmp_path / "r").mkdir()
    (tmp_path / "art").mkdir()
    with serve_in_thread(f"sqlite:///{tmp_path / 'r' / 'server.db'}", str(tmp_path / "art")) as url:
        assert _run("import flowml as mlflow", url, tmp_path / "r") == expected  # the REST client
