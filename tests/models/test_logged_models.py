"""MLflow 3 logged models from flowml's own ``log_model`` (SQLite store; the REST path is in
``tests/contract/test_logged_models.py``)."""

from __future__ import annotations

import logging
import pickle
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import flowml
import flowml.pyfunc
import flowml.sklearn
from flowml.client._logged_models import MODEL_CHECKSUMS_TAG
from flowml.entities import LoggedModelStatus
from flowml.exceptions import FlowmlError
from flowml.models.integrity import ModelIntegrityError, write_manifest
from tests.models.model_classes import AddN

x_data = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]})


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (open, (self.path, "w"))


def test_log_model_creates_a_ready_logged_model(models_env: str) -> None:
    flowml.set_experiment("lm")
    with flowml.start_run() as run:
        flowml.log_params({"alpha": 0.5})
        flowml.log_metric("acc", 0.75)
        flowml.log_metric("acc", 0.5, step=3)  # another step: not the model's
        info = flowml.pyfunc.log_model(
            name="adder", python_model=AddN(2), params={"extra": 1}, tags={"team": "ml"}, model_type="agent"
        )
    assert re.fullmatch(r"m-[0-9a-f]{32}", info.model_id) and info.model_uuid == info.model_id
    assert info.model_uri == f"models:/{info.model_id}" and info.name == "adder"
    assert info.run_id == run.info.run_id and info.registered_model_version is None
    assert info.params == {"alpha": "0.5", "extra": "1"}
    assert info.tags["team"] == "ml" and info.tags["mlflow.source.type"] == "LOCAL"
    model = flowml.get_logged_model(info.model_id)
    assert model.status == LoggedModelStatus.READY == "READY"
    assert (model.name, model.source_run_id, model.model_type) == ("adder", run.info.run_id, "agent")
    assert model.experiment_id == run.info.experiment_id
    assert model.artifact_location == info.artifact_path
    assert model.artifact_location.endswith(f"/models/{info.model_id}/artifacts")
    assert [(m.key, m.value, m.step, m.run_id) for m in model.metrics] == [("acc", 0.75, 0, run.info.run_id)]
    assert MODEL_CHECKSUMS_TAG in model.tags
    stored = flowml.get_run(run.info.run_id)
    assert [(o.model_id, o.step) for o in stored.outputs.model_outputs] == [(info.model_id, 0)]
    assert "mlflow.log-model.history" not in stored.data.tags  # MLflow 3 does not write it
    assert flowml.FlowmlClient().list_artifacts(run.info.run_id) == []  # nothing under the run
    assert {f.path for f in flowml.FlowmlClient().list_logged_model_artifacts(info.model_id)} >= {
        "MLmodel",
        "python_model.pkl",
    }
    mlmodel = flowml.models.Model.load(Path(model.artifact_location))
    assert (mlmodel.run_id, mlmodel.model_uuid, mlmodel.extra["model_id"]) == (
        run.info.run_id,
        info.model_id,
        info.model_id,
    )
    assert flowml.last_logged_model().model_id == info.model_id  # type: ignore[union-attr]


def test_models_runs_and_registry_uris_load(models_env: str) -> None:
    with flowml.start_run() as run:
        info = flowml.pyfunc.log_model(name="adder", python_model=AddN(3), registered_model_name="adders")
    assert info.registered_model_version == 1
    uris = [info.model_uri, f"runs:/{run.info.run_id}/adder", "models:/adders/1", "models:/adders/latest"]
    for uri in uris:
        model = flowml.pyfunc.load_model(uri)
        pd.testing.assert_frame_equal(model.predict(x_data), x_data + 3)
        assert model.integrity == "manifest"
    version = flowml.FlowmlClient().get_model_version("adders", "1")
    assert (version.source, version.run_id, version.model_id) == (info.model_uri, run.info.run_id, None)
    tags = flowml.get_logged_model(info.model_id).tags
    assert tags["mlflow.modelVersions"] == '[{"name": "adders", "version": 1}]'
    # register_model with a runs:/ URI of a logged model registers models:/<model_id> (MLflow 3)
    again = flowml.register_model(f"runs:/{run.info.run_id}/adder", "adders")
    assert (again.version, again.source, again.run_id) == ("2", info.model_uri, run.info.run_id)
    assert '"version": 2' in flowml.get_logged_model(info.model_id).tags["mlflow.modelVersions"]
    with pytest.raises(FlowmlError) as err:
        flowml.pyfunc.load_model(f"runs:/{run.info.run_id}/nope")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_models_logged_under_the_run_before_mlflow_3_still_load(models_env: str, tmp_path: Path) -> None:
    """The pre-logged-model layout: the MLmodel dir inside the run's artifacts (runs:/ and registry)."""
    client = flowml.FlowmlClient()
    flowml.pyfunc.save_model(tmp_path / "saved", python_model=AddN(5))
    with flowml.start_run() as run:
        client.log_artifacts(run.info.run_id, str(tmp_path / "saved"), "model")
    uri = f"runs:/{run.info.run_id}/model"
    model = flowml.pyfunc.load_model(uri)
    pd.testing.assert_frame_equal(model.predict(x_data), x_data + 5)
    version = flowml.register_model(uri, "legacy")
    assert version.source == f"{client.get_run(run.info.run_id).info.artifact_uri}/model"
    pd.testing.assert_frame_equal(flowml.pyfunc.load_model("models:/legacy/1").predict(x_data), x_data + 5)
    # (tampering with such a model is caught by the run's checksums: tests/models/test_integrity.py)


def test_tampered_logged_model_refused_even_with_rewritten_manifest(models_env: str, tmp_path: Path) -> None:
    with flowml.start_run():
        info = flowml.pyfunc.log_model(name="m", python_model=AddN(1), registered_model_name="tampered")
    model_dir = Path(info.artifact_path)
    (model_dir / "python_model.pkl").write_bytes(pickle.dumps(_Touch(str(tmp_path / "pwned"))))
    write_manifest(str(model_dir))  # a consistent, forged manifest
    for uri in (info.model_uri, "models:/tampered/1"):
        with pytest.raises(ModelIntegrityError, match="recorded by the tracking store"):
            flowml.pyfunc.load_model(uri)
    (model_dir / "flowml_checksums.json").unlink()
    with pytest.raises(ModelIntegrityError, match="recorded by the tracking store"):
        flowml.pyfunc.load_model(info.model_uri)
    assert not (tmp_path / "pwned").exists()


def test_artifact_path_is_deprecated_and_not_both(models_env: str, caplog: pytest.LogCaptureFixture) -> None:
    with flowml.start_run(), caplog.at_level(logging.WARNING, logger="flowml.models.save"):
        info = flowml.pyfunc.log_model("old_style", python_model=AddN(0))
        with pytest.raises(FlowmlError, match="Please only specify `name`"):
            flowml.pyfunc.log_model("a", python_model=AddN(0), name="a")
    assert info.name == "old_style"
    assert "`artifact_path` is deprecated. Please use `name` instead." in caplog.text


def test_without_a_run_no_run_is_started(models_env: str) -> None:
    experiment = flowml.set_experiment("no-run")
    info = flowml.pyfunc.log_model(python_model=AddN(0))
    assert flowml.active_run() is None and info.run_id is None
    model = flowml.get_logged_model(info.model_id)
    assert model.experiment_id == experiment.experiment_id and model.source_run_id is None
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{3}", model.name)  # a random name, as MLflow gives


def test_a_failed_save_leaves_a_failed_model(models_env: str) -> None:
    with flowml.start_run(), pytest.raises(FlowmlError):
        flowml.pyfunc.log_model(name="bad", python_model=AddN(0), code_paths=["/does/not/exist"])
    (model,) = flowml.search_logged_models(output_format="list")
    assert (model.name, model.status) == ("bad", "FAILED")


def test_fluent_logged_model_api(models_env: str) -> None:
    flowml.set_experiment("fluent-lm")
    with flowml.start_run() as run:
        pending = flowml.initialize_logged_model(name="pending", params={"p": 1})
    assert pending.status == "PENDING" and pending.source_run_id == run.info.run_id
    assert flowml.last_logged_model().model_id == pending.model_id  # type: ignore[union-attr]
    info = flowml.pyfunc.log_model(python_model=AddN(1), model_id=pending.model_id)  # files for it
    assert info.model_id == pending.model_id and flowml.get_logged_model(info.model_id).status == "READY"
    pd.testing.assert_frame_equal(flowml.pyfunc.load_model(info.model_uri).predict(x_data), x_data + 1)
    assert flowml.finalize_logged_model(pending.model_id, "FAILED").status == LoggedModelStatus.FAILED
    external = flowml.create_external_model(name="ext", model_type="agent")
    assert external.status == "READY" and external.tags["mlflow.model.isExternal"] == "true"
    flowml.set_logged_model_tags(external.model_id, {"k": "v", "n": 2})
    flowml.delete_logged_model_tag(external.model_id, "k")
    assert flowml.get_logged_model(external.model_id).tags["n"] == "2"
    assert "k" not in flowml.get_logged_model(external.model_id).tags
    # searches default to the active experiment, every page
    listed = flowml.search_logged_models(output_format="list", order_by=[{"field_name": "name"}])
    assert [m.name for m in listed] == ["ext", "pending"]
    frame = flowml.search_logged_models(filter_string="name = 'ext'")
    assert list(frame["name"]) == ["ext"] and list(frame["status"]) == ["READY"]
    assert {"model_id", "artifact_location", "params", "tags", "metrics"} <= set(frame.columns)
    with pytest.raises(FlowmlError, match="Unsupported output format"):
        flowml.search_logged_models(output_format="json")  # type: ignore[arg-type]
    # the active model
    assert flowml.get_active_model_id() is None
    with pytest.raises(FlowmlError, match="model_id"):
        flowml.log_model_params({"x": 1})  # no active model
    with flowml.set_active_model(name="ext") as active:
        assert active.model_id == external.model_id == flowml.get_active_model_id()
        flowml.log_model_params({"x": 1})
    assert flowml.get_active_model_id() is None
    assert flowml.get_logged_model(external.model_id).params == {"x": "1"}
    created = flowml.set_active_model(name="brand-new")  # no such model: an external one is made
    assert flowml.get_active_model_id() == created.model_id and created.name == "brand-new"
    with pytest.raises(FlowmlError, match="does not match"):
        flowml.set_active_model(name="other", model_id=external.model_id)
    flowml.clear_active_model()
    assert flowml.get_active_model_id() is None


def test_active_model_from_the_environment(models_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ACTIVE_MODEL_ID", "m-from-env")
    assert flowml.get_active_model_id() == "m-from-env"
    flowml.clear_active_model()
    assert flowml.get_active_model_id() is None
