"""The fluent API as MLflow users write it: ``import flowml as mlflow``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import flowml as mlflow
from flowml.client import FlowmlClient
from flowml.exceptions import FlowmlError


def test_seed_tracking_example_runs_unchanged(flowml_env: str, tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04weights")
    with mlflow.start_run() as run:
        mlflow.log_param("learning_rate", 0.01)
        mlflow.log_param("batch_size", 32)
        mlflow.log_metric("accuracy", 0.93)
        mlflow.log_metric("loss", 0.21)
        mlflow.log_artifact("model.pkl")
    stored = mlflow.get_run(run.info.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.data.params == {"learning_rate": "0.01", "batch_size": "32"}
    assert stored.data.metrics == {"accuracy": 0.93, "loss": 0.21}
    assert [f.path for f in FlowmlClient().list_artifacts(run.info.run_id)] == ["model.pkl"]
    runs = mlflow.search_runs()
    assert list(runs["run_id"]) == [run.info.run_id]
    assert runs.loc[0, "metrics.accuracy"] == 0.93 and runs.loc[0, "params.batch_size"] == "32"


def test_set_experiment_creates_then_reuses(flowml_env: str) -> None:
    first = mlflow.set_experiment("my_experiment")
    again = mlflow.set_experiment("my_experiment")
    assert first.experiment_id == again.experiment_id != "0"
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == first.experiment_id
    assert mlflow.set_experiment(experiment_id=first.experiment_id).name == "my_experiment"
    with pytest.raises(FlowmlError):
        mlflow.set_experiment()


def test_set_experiment_refuses_a_deleted_experiment(flowml_env: str) -> None:
    exp_id = mlflow.create_experiment("soon-gone")
    FlowmlClient().delete_experiment(exp_id)
    with pytest.raises(FlowmlError) as err:
        mlflow.set_experiment("soon-gone")
    assert "deleted" in err.value.message


def test_buffered_metrics_are_all_written_by_end_run(flowml_env: str) -> None:
    with mlflow.start_run() as run:
        for i in range(5000):
            mlflow.log_metric("loss", 1 / (i + 1), step=i)
        mlflow.log_metrics({"a": 1.0, "b": 2.0}, step=3)
    client = FlowmlClient()
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 5000
    assert client.get_run(run.info.run_id).data.metrics == {"loss": 1 / 5000, "a": 1.0, "b": 2.0}


def test_exception_in_with_block_flushes_and_marks_failed(flowml_env: str) -> None:
    with pytest.raises(ZeroDivisionError), mlflow.start_run() as run:
        for i in range(10):
            mlflow.log_metric("m", float(i), step=i)
        _ = 1 / 0
    stored = FlowmlClient().get_run(run.info.run_id)
    assert stored.info.status == "FAILED"
    assert len(FlowmlClient().get_metric_history(run.info.run_id, "m")) == 10
    assert mlflow.active_run() is None


def test_flush_makes_buffered_points_visible_to_other_clients(flowml_env: str) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
        mlflow.flush()
        assert FlowmlClient().get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_a_failed_background_flush_surfaces_at_end_run(flowml_env: str) -> None:
    run = mlflow.start_run()
    FlowmlClient().delete_run(run.info.run_id)  # later writes to it are refused
    mlflow.log_metric("m", 1.0)
    with pytest.raises(FlowmlError) as err:
        mlflow.end_run()
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_invalid_metric_fails_at_the_call_not_at_flush(flowml_env: str) -> None:
    with mlflow.start_run():
        with pytest.raises(FlowmlError):
            mlflow.log_metric("bad*key", 1.0)
        with pytest.raises(FlowmlError):
            mlflow.log_metric("m", "not a number")  # type: ignore[arg-type]


def test_synchronous_log_metric_is_written_immediately(flowml_env: str) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 2.0, synchronous=True)
        assert FlowmlClient().get_run(run.info.run_id).data.metrics == {"m": 2.0}


def test_nested_runs_and_parent_tag(flowml_env: str) -> None:
    with mlflow.start_run(run_name="parent") as parent:
        with pytest.raises(FlowmlError):
            mlflow.start_run()
        with mlflow.start_run(nested=True, run_name="child") as child:
            assert mlflow.active_run().info.run_id == child.info.run_id
        assert mlflow.active_run().info.run_id == parent.info.run_id
    tags = mlflow.get_run(child.info.run_id).data.tags
    assert tags["mlflow.parentRunId"] == parent.info.run_id
    assert tags["mlflow.runName"] == "child"
    assert mlflow.last_active_run().info.run_id == parent.info.run_id


def test_active_run_is_per_thread(flowml_env: str) -> None:
    seen: dict[str, object] = {}
    with mlflow.start_run() as run:

        def other() -> None:
            seen["active"] = mlflow.active_run()
            with mlflow.start_run(run_name="thread-run") as own:
                mlflow.log_metric("x", 1.0)
                seen["own"] = own.info.run_id

        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
        assert mlflow.active_run().info.run_id == run.info.run_id
    assert seen["active"] is None
    assert mlflow.get_run(str(seen["own"])).data.metrics == {"x": 1.0}


def test_log_text_dict_and_figure(flowml_env: str, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with mlflow.start_run() as run:
        mlflow.log_text("hello", "notes/readme.txt")
        mlflow.log_dict({"a": [1, 2]}, "config.json")
        mlflow.log_dict({"a": 1}, "config.yaml")
        mlflow.log_figure(fig, "plots/curve.png")
    client = FlowmlClient()
    out = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "dl")))
    assert (out / "notes/readme.txt").read_text() == "hello"
    assert (out / "config.json").read_text().replace(" ", "").replace("\n", "") == '{"a":[1,2]}'
    assert (out / "config.yaml").read_text() == "a: 1\n"
    assert (out / "plots/curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checksums = client.get_artifact_checksums(run.info.run_id)
    assert set(checksums) == {"notes/readme.txt", "config.json", "config.yaml", "plots/curve.png"}


def _run_script(code: str, env_uri: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWML_", "MLFLOW_"))}
    env["FLOWML_TRACKING_URI"] = env_uri
    env["FLOWML_ARTIFACT_ROOT"] = str(cwd / "artifacts")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_without_with_block_is_ended_and_flushed_at_exit(flowml_env: str, tmp_path: Path) -> None:
    """Seed 001: log_param/log_metric with no start_run auto-start a run that exit finishes."""
    result = _run_script(
        """
        import flowml as mlflow
        mlflow.set_experiment("my_experiment")
        mlflow.log_param("learning_rate", 0.1)
        for i in range(300):
            mlflow.log_metric("accuracy", i / 300, step=i)
        """,
        flowml_env,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    runs = mlflow.search_runs(experiment_names=["my_experiment"], output_format="list")
    assert len(runs) == 1
    assert runs[0].info.status == "FINISHED"
    assert len(FlowmlClient().get_metric_history(runs[0].info.run_id, "accuracy")) == 300


def test_a_script_run_names_its_source_as_mlflow_does(flowml_env: str, tmp_path: Path) -> None:
    import os

    script = tmp_path / "jobs" / "train.py"
    script.parent.mkdir()
    script.write_text(
        "import flowml as mlflow\nwith mlflow.start_run() as run:\n    print(run.info.run_id)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWML_", "MLFLOW_"))}
    env["FLOWML_TRACKING_URI"] = flowml_env
    done = subprocess.run(
        [sys.executable, "jobs/train.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    tags = mlflow.get_run(done.stdout.strip()).data.tags
    assert tags["mlflow.source.name"] == "jobs/train.py"  # sys.argv[0] as given, like MLflow
    assert tags["mlflow.source.type"] == "LOCAL"


def test_import_flowml_loads_no_heavy_library() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, flowml; heavy = [m for m in ('sqlalchemy', 'sqlmodel', 'pandas', 'prefect', "
            "'bentoml', 'sklearn', 'xgboost', 'pydantic', 'boto3') if m in sys.modules]; print(heavy)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"


PUBLIC_API = [
    "ActiveModel",
    "ActiveRun",
    "FlowmlClient",
    "Image",
    "MlflowClient",
    "MlflowException",
    "__version__",
    "active_run",
    "artifacts",
    "autolog",
    "clear_active_model",
    "client",
    "create_experiment",
    "create_external_model",
    "data",
    "delete_experiment",
    "delete_experiment_tag",
    "delete_logged_model_tag",
    "delete_run",
    "delete_tag",
    "end_run",
    "entities",
    "exceptions",
    "finalize_logged_model",
    "flow",
    "flush",
    "flush_async_logging",
    "get_active_model_id",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_logged_model",
    "get_parent_run",
    "get_registry_uri",
    "get_run",
    "get_tracking_uri",
    "initialize_logged_model",
    "is_tracking_uri_set",
    "last_active_run",
    "last_logged_model",
    "load_table",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_image",
    "log_input",
    "log_inputs",
    "log_metric",
    "log_metrics",
    "log_model_params",
    "log_param",
    "log_params",
    "log_table",
    "log_text",
    "models",
    "orchestration",
    "projects",
    "pyfunc",
    "register_model",
    "registry",
    "restore_experiment",
    "restore_run",
    "run",
    "search_experiments",
    "search_logged_models",
    "search_model_versions",
    "search_registered_models",
    "search_runs",
    "set_active_model",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_logged_model_tags",
    "set_model_version_tag",
    "set_registry_uri",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "settings",
    "sklearn",
    "start_run",
    "sweep",
    "task",
    "tracking",
    "validation",
    "xgboost",
]


def test_public_api_is_pinned() -> None:
    """Adding or removing a public name is a deliberate change: update this list with it."""
    assert sorted(mlflow.__all__) == sorted(PUBLIC_API)
    for name in mlflow.__all__:
        assert getattr(mlflow, name) is not None
    assert mlflow.MlflowClient is mlflow.FlowmlClient
    assert mlflow.tracking.MlflowClient is mlflow.FlowmlClient  # MLflow's ``mlflow.tracking.MlflowClient``


def test_mlflow_client_takes_mlflow_arguments(flowml_env: str) -> None:
    """``mlflow.tracking.MlflowClient(tracking_uri=..., registry_uri=...)``: the registry is the tracking
    store, so a registry URI naming another store is refused rather than silently ignored."""
    client = mlflow.tracking.MlflowClient(tracking_uri=flowml_env, registry_uri=flowml_env + "/")
    assert client.get_experiment("0").name == "Default"
    with pytest.raises(mlflow.exceptions.FlowmlError) as err:
        mlflow.tracking.MlflowClient(tracking_uri=flowml_env, registry_uri="sqlite:///elsewhere.db")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_registry_uri_may_only_name_the_tracking_store(
    flowml_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWML_REGISTRY_URI", raising=False)  # so the variable set below is undone
    assert mlflow.get_registry_uri() == mlflow.get_tracking_uri()
    with mlflow.start_run() as run:
        mlflow.log_text("weights", "model/weights.txt")
    mlflow.set_registry_uri(str(tmp_path / "elsewhere.db"))  # a bare path: a SQLite file, as for tracking
    assert mlflow.get_registry_uri() == f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with pytest.raises(mlflow.exceptions.FlowmlError) as err:
        mlflow.register_model(f"runs:/{run.info.run_id}/model", "m")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE" and "registry" in err.value.message
    mlflow.set_registry_uri(mlflow.get_tracking_uri())
    assert mlflow.register_model(f"runs:/{run.info.run_id}/model", "m").version == "1"


def test_a_script_against_a_server_ends_its_run_and_closes_its_connections(
    flowml_env: str, tmp_path: Path
) -> None:
    """At exit an open run is ended (its buffered metrics written) *before* the cached clients are
    closed: no socket or database connection is left to the garbage collector (``-X dev`` reports it)."""
    import os

    from tests.fixtures.server import serve_in_thread

    (tmp_path / "art").mkdir()
    with serve_in_thread(flowml_env, str(tmp_path / "art")) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWML_", "MLFLOW_"))}
        env["FLOWML_TRACKING_URI"] = url
        script = "import flowml as mlflow\nrun = mlflow.start_run()\nmlflow.log_metric('m', 2.0)\n"
        # artifacts through the server's proxy: each call's repository must not leave a socket behind
        script += "for i in range(3): mlflow.log_text('t', f'x/{i}.txt')\n"
        script += "c = mlflow.MlflowClient(); c.list_artifacts(run.info.run_id, 'x')\n"
        script += "c.download_artifacts(run.info.run_id, 'x')\nimport gc; gc.collect()\n"
        script += "print(run.info.run_id)\n"
        done = subprocess.run(
            [sys.executable, "-X", "dev", "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr
    assert "ResourceWarning" not in done.stderr, done.stderr
    run = FlowmlClient(flowml_env).get_run(done.stdout.strip())
    assert run.info.status == "FINISHED" and run.data.metrics == {"m": 2.0}
