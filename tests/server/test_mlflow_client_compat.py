"""The unmodified ``mlflow`` client (3.17) against ``flowml server`` — a real process on loopback."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowml.client import FlowmlClient
from tests.fixtures.scripts import script_json
from tests.fixtures.server import flowml_server_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``flowml server`` on a SQLite file, or on a database of the private PostgreSQL cluster."""
    root = tmp_path_factory.mktemp("mlflow-compat")
    store = f"sqlite:///{root / 'store.db'}"
    if request.param == "postgres":
        cluster = request.getfixturevalue("postgres_cluster")
        store = cluster.create_database(cluster.unique_name("mlflow_compat"))
    with flowml_server_process(store, str(root / "artifacts")) as url:
        yield url


def run_mlflow(url: str, code: str, cwd: Path) -> dict[str, object]:
    """Run ``code`` with the real mlflow package in a fresh interpreter; it prints one JSON line."""
    result: dict[str, object] = script_json(textwrap.dedent(code), cwd=cwd, env={"MLFLOW_TRACKING_URI": url})
    return result


def test_tracking_calls(server: str, tmp_path: Path) -> None:
    out = run_mlflow(
        server,
        """
        import json, mlflow
        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param, RunTag
        mlflow.set_experiment("compat-tracking")
        with mlflow.start_run(run_name="r1", tags={"team": "a"}) as run:
            mlflow.log_param("lr", 0.1)
            mlflow.log_params({"depth": 3, "kind": "gbm"})
            for step in range(5):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            mlflow.log_metrics({"acc": 0.9, "nan_metric": float("nan")})
            mlflow.set_tag("stage", "dev")
            import pandas as pd
            dataset = mlflow.data.from_pandas(pd.DataFrame({"a": [1, 2]}), name="tiny")
            mlflow.log_input(dataset, context="training")
        client = MlflowClient()
        client.log_batch(run.info.run_id, metrics=[Metric("b", 2.0, 1, 0)], params=[Param("p", "v")],
                         tags=[RunTag("t", "v")])
        r = client.get_run(run.info.run_id)
        hist = client.get_metric_history(run.info.run_id, "loss")
        try:
            client.log_param(run.info.run_id, "lr", 0.2)
            changed = "no error"
        except mlflow.exceptions.MlflowException as e:
            changed = e.error_code
        try:
            client.get_run("0" * 32)
            missing = "no error"
        except mlflow.exceptions.MlflowException as e:
            missing = e.error_code
        print(json.dumps({
            "run_id": run.info.run_id, "status": r.info.status, "params": r.data.params,
            "metrics": {k: (v if v == v else "nan") for k, v in r.data.metrics.items()},
            "tags": {k: v for k, v in r.data.tags.items() if not k.startswith("mlflow.")},
            "run_name": r.info.run_name, "history": [(m.step, m.value) for m in hist],
            "changed": changed, "missing": missing, "digest": dataset.digest,
            "inputs": [(i.dataset.name, i.dataset.digest, i.dataset.source_type,
                        [(t.key, t.value) for t in i.tags]) for i in r.inputs.dataset_inputs],
            "searched": [i.dataset.name
                         for i in client.search_runs([run.info.experiment_id])[0].inputs.dataset_inputs],
            "schema": bool(r.inputs.dataset_inputs[0].dataset.schema),
            "by_dataset": [x.info.run_id for x in client.search_runs(
                [run.info.experiment_id], "datasets.name = 'tiny' AND datasets.context = 'training'")],
        }))
        """,
        tmp_path,
    )
    assert out["status"] == "FINISHED" and out["run_name"] == "r1"
    assert out["params"] == {"lr": "0.1", "depth": "3", "kind": "gbm", "p": "v"}
    assert out["metrics"] == {"loss": 0.2, "acc": 0.9, "nan_metric": "nan", "b": 2.0}
    assert out["tags"] == {"team": "a", "stage": "dev", "t": "v"}
    assert out["history"] == [[i, 1.0 / (i + 1)] for i in range(5)]
    assert out["changed"] == "INVALID_PARAMETER_VALUE"
    assert out["missing"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["inputs"] == [["tiny", out["digest"], "code", [["mlflow.data.context", "training"]]]]
    assert out["searched"] == ["tiny"] and out["schema"] is True
    assert out["by_dataset"] == [out["run_id"]]
    # What mlflow wrote is what flowml reads.
    run = FlowmlClient(server).get_run(str(out["run_id"]))
    assert run.data.params["depth"] == "3"


def test_search_with_filters_and_paging(server: str, tmp_path: Path) -> None:
    out = run_mlflow(
        server,
        """
        import json, mlflow
        from mlflow import MlflowClient
        exp = mlflow.set_experiment("compat-search")
        for i in range(25):
            with mlflow.start_run(run_name=f"run-{i:02d}"):
                mlflow.log_metric("score", i / 25)
                mlflow.log_param("parity", "even" if i % 2 == 0 else "odd")
        client = MlflowClient()
        seen, token = [], None
        while True:
            page = client.search_runs([exp.experiment_id], "params.parity = 'even' and metrics.score >= 0.2",
                                      max_results=4, order_by=["metrics.score DESC"], page_token=token)
            seen += [r.info.run_name for r in page]
            token = page.token
            if not token:
                break
        df = mlflow.search_runs(filter_string="metrics.score < 0.1")
        exps = [e.name for e in client.search_experiments(filter_string="name LIKE 'compat-%'")]
        print(json.dumps({"seen": seen, "df": sorted(df["tags.mlflow.runName"]), "exps": exps}))
        """,
        tmp_path,
    )
    assert out["seen"] == [f"run-{i:02d}" for i in range(24, 4, -2)]
    assert out["df"] == ["run-00", "run-01", "run-02"]
    assert "compat-search" in out["exps"]  # type: ignore[operator]


def test_artifacts_up_and_down_through_the_proxy(server: str, tmp_path: Path) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    (tmp_path / "blob.bin").write_bytes(payload)
    out = run_mlflow(
        server,
        """
        import json, mlflow
        from mlflow import MlflowClient
        with mlflow.start_run() as run:
            mlflow.log_artifact("blob.bin", "data")
            mlflow.log_text("hello", "notes/hello.txt")
        client = MlflowClient()
        listing = [(f.path, f.is_dir) for f in client.list_artifacts(run.info.run_id)]
        nested = [(f.path, f.file_size) for f in client.list_artifacts(run.info.run_id, "data")]
        local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="data/blob.bin",
                                                    dst_path="dl")
        print(json.dumps({"run_id": run.info.run_id, "uri": run.info.artifact_uri, "listing": listing,
                          "nested": nested, "local": local}))
        """,
        tmp_path,
    )
    assert str(out["uri"]).startswith("mlflow-artifacts:/")
    assert out["listing"] == [["data", True], ["notes", True]]
    assert out["nested"] == [["data/blob.bin", len(payload)]]
    assert Path(str(out["local"])).read_bytes() == payload
    # flowml's own REST client reads the same bytes back through the proxy.
    dst = FlowmlClient(server).download_artifacts(str(out["run_id"]), "notes/hello.txt", str(tmp_path / "f"))
    assert Path(dst).read_text() == "hello"


def test_sklearn_log_model_and_pyfunc_load_round_trip(server: str, tmp_path: Path) -> None:
    out = run_mlflow(
        server,
        """
        import json, mlflow, numpy as np
        from sklearn.linear_model import LinearRegression
        X = np.arange(40, dtype=float).reshape(20, 2)
        model = LinearRegression().fit(X, X @ [1.0, -2.0] + 3)
        mlflow.set_experiment("compat-models")
        with mlflow.start_run() as run:
            info = mlflow.sklearn.log_model(model, name="model", input_example=X[:2],
                                            serialization_format="cloudpickle")
        by_run = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(X)
        by_model = mlflow.pyfunc.load_model(info.model_uri).predict(X)
        print(json.dumps({"ok_run": bool(np.allclose(by_run, model.predict(X))),
                          "ok_model": bool(np.allclose(by_model, model.predict(X))),
                          "uri": info.model_uri}))
        """,
        tmp_path,
    )
    assert out["ok_run"] is True and out["ok_model"] is True
    assert str(out["uri"]).startswith("models:/m-")


def test_registry_register_stages_aliases_and_models_uris(server: str, tmp_path: Path) -> None:
    out = run_mlflow(
        server,
        """
        import json, mlflow, numpy as np
        from mlflow import MlflowClient
        from sklearn.linear_model import LinearRegression
        X = np.arange(20, dtype=float).reshape(10, 2)
        client = MlflowClient()
        mlflow.set_experiment("compat-registry")
        preds = []
        # pip_requirements given: MLflow's requirement inference (a subprocess per model, ~6 s) is
        # client-side only; the sklearn round-trip test keeps it
        for slope in (1.0, 2.0):
            model = LinearRegression().fit(X, X @ [slope, 0.0])
            with mlflow.start_run() as run:
                mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle",
                                         pip_requirements=["scikit-learn"])
            preds.append(model.predict(X))
            mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", "compat-reg")
        client.update_registered_model("compat-reg", description="two slopes")
        client.transition_model_version_stage("compat-reg", "1", "Production")
        client.transition_model_version_stage("compat-reg", "2", "Production", archive_existing_versions=True)
        client.set_registered_model_alias("compat-reg", "champion", "1")
        client.set_registered_model_alias("compat-reg", "challenger", "2")
        client.delete_registered_model_alias("compat-reg", "challenger")
        def same(uri, i):
            return bool(np.allclose(mlflow.pyfunc.load_model(uri).predict(X), preds[i]))
        versions = client.search_model_versions("name = 'compat-reg'")
        try:
            client.create_registered_model("compat-reg")
            dup = "no error"
        except mlflow.exceptions.MlflowException as e:
            dup = e.error_code
        reg = client.get_registered_model("compat-reg")
        with mlflow.start_run() as auto_run:  # log_model registers models:/<model_id>, with no run_id
            auto = mlflow.sklearn.log_model(model, name="model", registered_model_name="compat-auto",
                                            pip_requirements=["scikit-learn"])
        by_run = client.search_model_versions(f"run_id = '{auto_run.info.run_id}'")
        outputs = client.get_run(auto_run.info.run_id).outputs.model_outputs
        print(json.dumps({
            "last_version": mv.version,
            "stages": sorted((v.version, v.current_stage) for v in versions),
            "aliases": reg.aliases, "description": reg.description,
            "by_alias": client.get_model_version_by_alias("compat-reg", "champion").version,
            "uris": [same("models:/compat-reg/1", 0), same("models:/compat-reg@champion", 0),
                     same("models:/compat-reg/Production", 1), same("models:/compat-reg/latest", 1)],
            "found": [m.name for m in client.search_registered_models("name LIKE 'compat-%'")],
            "by_run": [(v.name, v.version) for v in by_run],
            "outputs": [(o.model_id, o.step) for o in outputs], "auto_model": auto.model_id,
            "dup": dup,
        }))
        """,
        tmp_path,
    )
    assert out["last_version"] == "2"
    assert out["stages"] == [["1", "Archived"], ["2", "Production"]]
    assert out["aliases"] == {"champion": "1"} and out["by_alias"] == "1"
    assert out["description"] == "two slopes"
    assert out["uris"] == [True, True, True, True]
    assert out["found"] == ["compat-auto", "compat-reg"]
    assert out["by_run"] == [["compat-auto", "1"]]  # the logged model's run, as MLflow records it
    assert out["outputs"] == [[out["auto_model"], 0]]
    assert out["dup"] == "RESOURCE_ALREADY_EXISTS"
    # What mlflow registered is what flowml's own REST client reads.
    version = FlowmlClient(server).get_model_version("compat-reg", "2")
    assert version.current_stage == "Production"


_LOGGED_MODEL_METRICS = """
import json, mlflow, numpy as np
from mlflow.entities import LoggedModelOutput
mlflow.set_experiment("compat-lm-metrics")
ev = mlflow.data.from_numpy(np.arange(6).reshape(3, 2), name="eval")
with mlflow.start_run() as run:
    a, b, c = (mlflow.create_external_model(name=name) for name in "abc")
    mlflow.log_metric("acc", 0.8, step=1, model_id=a.model_id)
    mlflow.log_metrics({"acc": 0.9, "loss": 0.25}, step=2, model_id=a.model_id, dataset=ev)
    mlflow.log_metrics({"acc": 0.95}, step=1, model_id=b.model_id)
    mlflow.set_active_model(model_id=c.model_id)
    mlflow.log_metric("f1", 0.5, step=3)  # linked to the active model by the client
    mlflow.MlflowClient().log_outputs(run.info.run_id, [LoggedModelOutput(b.model_id, 2)])
points = {
    m.name: sorted((p.key, p.value, p.step, p.dataset_name, p.run_id == run.info.run_id)
                   for p in mlflow.get_logged_model(m.model_id).metrics)
    for m in (a, b, c)
}
def names(**kwargs):
    return [m.name for m in mlflow.search_logged_models(output_format="list", **kwargs)]
by_id = {m.model_id: m.name for m in (a, b, c)}
def links(r):
    used = sorted(by_id[i.model_id] for i in (r.inputs.model_inputs if r.inputs else []))
    made = sorted(by_id[o.model_id] for o in (r.outputs.model_outputs if r.outputs else []))
    return used, made
print(json.dumps({
    "points": points,
    "run_links": links(mlflow.get_run(run.info.run_id)),
    "searched_links": links(mlflow.search_runs(output_format="list")[0]),
    "run_metrics": mlflow.get_run(run.info.run_id).data.metrics,
    "searches": [
        names(filter_string="metrics.acc > 0.85"),
        names(filter_string="metrics.acc > 0.92 AND name != 'a'"),
        names(order_by=[{"field_name": "metrics.acc", "ascending": False}]),
        names(order_by=[{"field_name": "metrics.acc", "ascending": True}]),
        names(datasets=[{"dataset_name": "eval"}]),
        names(filter_string="metrics.acc > 0.85", datasets=[{"dataset_name": "eval"}]),
        names(order_by=[{"field_name": "metrics.acc", "ascending": False, "dataset_name": "eval"}]),
    ],
}))
"""


@pytest.fixture(scope="module")
def mlflow_logged_model_metrics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """What MLflow itself answers for the logged-model metrics script (its own SQLite store). Not
    through ``mlflow server``: its handler turns a missing ``dataset_digest`` into ``None``, which its
    store then matches as ``IS NULL`` (so ``datasets=[{"dataset_name": "eval"}]`` finds nothing over
    REST); flowml follows the store's rule (any digest)."""
    root = tmp_path_factory.mktemp("mlflow-reference")
    return run_mlflow(f"sqlite:///{root / 'mlflow.db'}", _LOGGED_MODEL_METRICS, root)


def test_logged_model_metrics_searches_and_datasets_answer_as_mlflow(
    server: str, tmp_path: Path, mlflow_logged_model_metrics: dict[str, object]
) -> None:
    out = run_mlflow(server, _LOGGED_MODEL_METRICS, tmp_path)
    assert out == mlflow_logged_model_metrics
    assert out["points"] == {
        "a": [["acc", 0.8, 1, None, True], ["acc", 0.9, 2, "eval", True], ["loss", 0.25, 2, "eval", True]],
        "b": [["acc", 0.95, 1, None, True]],
        "c": [["f1", 0.5, 3, None, True]],
    }
    assert out["searches"][:2] == [["b", "a"], ["b"]]
    assert out["run_links"] == [["a", "b", "c"], ["b"]]  # the client logs each model as a run input
    assert out["searched_links"] == [[], ["b"]]  # MLflow's run search leaves model inputs out
