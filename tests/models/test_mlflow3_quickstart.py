"""MLflow 3's tracking quickstart, run once with the real ``mlflow`` package and once as
``import flowml as mlflow`` (each on its own SQLite store), with the same observable results."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.scripts import script_json

pytest.importorskip("mlflow")

_QUICKSTART = """
import json, os, re, sys
{imports}
from sklearn import datasets
from sklearn.linear_model import LogisticRegression

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("MLflow Quickstart")
X, y = datasets.load_iris(return_X_y=True)
X_train, X_test = X[::2], X[1::2]
params = {{"solver": "lbfgs", "max_iter": 1000, "random_state": 8888}}
lr = LogisticRegression(**params).fit(X_train, y[::2])
with mlflow.start_run() as run:
    mlflow.log_params(params)
    mlflow.log_metric("accuracy", 0.96)
    signature = infer_signature(X_train, lr.predict(X_train))
    model_info = mlflow.sklearn.log_model(
        sk_model=lr, name="iris_model", signature=signature, input_example=X_train,
        registered_model_name="tracking-quickstart",
    )
    mlflow.set_logged_model_tags(model_info.model_id, {{"Training Info": "Basic LR model for iris data"}})
model_id = model_info.model_id
logged = mlflow.get_logged_model(model_id)
stored = mlflow.get_run(run.info.run_id)
version = mlflow.MlflowClient().get_model_version("tracking-quickstart", "1")
loaded = mlflow.pyfunc.load_model(model_info.model_uri)
by_id = mlflow.pyfunc.load_model(f"models:/{{model_id}}")
by_run = mlflow.pyfunc.load_model(f"runs:/{{run.info.run_id}}/iris_model")
by_version = mlflow.pyfunc.load_model("models:/tracking-quickstart/1")
frame = mlflow.search_logged_models(output_format="pandas")
rid = run.info.run_id
print(json.dumps({{
    "model_id": bool(re.fullmatch(r"m-[0-9a-f]{{32}}", model_id)),
    "model_uri": model_info.model_uri == f"models:/{{model_id}}",
    "uuid": model_info.model_uuid == model_id,
    "info": [model_info.name, model_info.run_id == rid, model_info.registered_model_version,
             model_info.params, model_info.tags, model_info.artifact_path == logged.artifact_location,
             model_info.saved_input_example_info["type"]],
    "location": logged.artifact_location.endswith(f"/models/{{model_id}}/artifacts"),
    "logged": [str(logged.status), logged.name, logged.source_run_id == rid, logged.params,
               {{k: v for k, v in logged.tags.items() if not k.startswith("flowml.")}},
               [[m.key, m.value, m.step, m.run_id == rid, m.model_id == model_id] for m in logged.metrics]],
    "run": [[[o.model_id == model_id, o.step] for o in stored.outputs.model_outputs], stored.data.params,
            sorted(k for k in stored.data.tags if k != "mlflow.runName"), stored.data.metrics],
    "version": [version.source == model_info.model_uri, version.run_id == rid, version.model_id,
                str(version.version), version.status],
    "last": mlflow.last_logged_model().model_id == model_id,
    "predictions": [m.predict(X_test).tolist() for m in (loaded, by_id, by_run, by_version)],
    "frame": [sorted(frame.columns), len(frame), str(frame["status"][0])],
    "files": sorted(set(os.listdir(logged.artifact_location))
                    - {{"flowml_checksums.json", "registered_model_meta", "model.pkl", "model.skops"}}),
}}))
"""

_MLFLOW = "import mlflow\nimport mlflow.pyfunc, mlflow.sklearn\nfrom mlflow.models import infer_signature"
_FLOWML = (
    "import flowml as mlflow\nimport flowml.pyfunc, flowml.sklearn\nfrom flowml.models import infer_signature"
)


def _run(imports: str, tmp: Path) -> dict[str, Any]:
    tmp.mkdir()
    result: dict[str, Any] = script_json(
        textwrap.dedent(_QUICKSTART.format(imports=imports)),
        [f"sqlite:///{tmp / 'q.db'}"],
        cwd=tmp,
        env={"FLOWML_ARTIFACT_ROOT": str(tmp / "artifacts")},  # flowml's default root; mlflow uses ./mlruns
    )
    return result


def test_quickstart_answers_as_mlflow(tmp_path: Path) -> None:
    theirs = _run(_MLFLOW, tmp_path / "mlflow")
    ours = _run(_FLOWML, tmp_path / "flowml")
    assert ours == theirs
    # what both answered (so the comparison cannot pass on two empty results)
    assert theirs["model_id"] and theirs["model_uri"] and theirs["uuid"] and theirs["location"]
    assert theirs["info"][:4] == [
        "iris_model",
        True,
        1,
        {"max_iter": "1000", "random_state": "8888", "solver": "lbfgs"},
    ]
    assert (
        theirs["logged"][0] == "READY"
        and theirs["logged"][4]["Training Info"] == "Basic LR model for iris data"
    )
    assert theirs["logged"][4]["mlflow.modelVersions"] == '[{"name": "tracking-quickstart", "version": 1}]'
    assert theirs["logged"][5] == [["accuracy", 0.96, 0, True, True]]
    assert theirs["run"][0] == [[True, 0]] and "mlflow.log-model.history" not in theirs["run"][2]
    assert theirs["version"] == [True, True, None, "1", "READY"]  # MLflow 3.17's SQL store keeps no model_id
    assert len({json.dumps(p) for p in theirs["predictions"]}) == 1 and theirs["last"]
