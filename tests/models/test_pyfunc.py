"""flowml.pyfunc: custom models saved/logged/loaded with MLflow's layout, through real runs."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import flowml
import flowml.pyfunc
from flowml.exceptions import FlowmlError
from flowml.models import Model, infer_signature, validate_serving_input
from tests.models.model_classes import AddN, NoContext, WithArtifact

x_data = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]})


def test_save_writes_mlflow_layout(tmp_path: Path) -> None:
    path = tmp_path / "m"
    flowml.pyfunc.save_model(
        path, python_model=AddN(1), input_example=x_data, signature=infer_signature(x_data, x_data, {"k": 0})
    )
    files = sorted(os.listdir(path))
    assert files == sorted(
        [
            "MLmodel",
            "conda.yaml",
            "flowml_checksums.json",
            "input_example.json",
            "python_env.yaml",
            "python_model.pkl",
            "requirements.txt",
            "serving_input_example.json",
        ]
    )
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    pf = mlmodel["flavors"]["python_function"]
    assert pf["loader_module"] == "mlflow.pyfunc.model"
    assert pf["python_model"] == "python_model.pkl"
    assert pf["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    assert pf["python_version"].count(".") == 2 and pf["cloudpickle_version"]
    assert mlmodel["flowml_version"] == flowml.__version__
    assert len(mlmodel["model_uuid"]) == 32 and mlmodel["utc_time_created"]
    assert json.loads(mlmodel["signature"]["params"]) == [
        {"name": "k", "default": 0, "shape": None, "type": "long"}
    ]
    assert mlmodel["saved_input_example_info"]["type"] == "dataframe"
    reqs = (path / "requirements.txt").read_text().split()
    import cloudpickle

    assert f"cloudpickle=={cloudpickle.__version__}" in reqs and f"pandas=={pd.__version__}" in reqs
    env = yaml.safe_load((path / "python_env.yaml").read_text())
    assert env["dependencies"] == ["-r requirements.txt"]
    conda = yaml.safe_load((path / "conda.yaml").read_text())
    assert conda["dependencies"][-1]["pip"] == reqs
    assert json.loads((path / "serving_input_example.json").read_text())["dataframe_split"]["columns"] == [
        "a",
        "b",
    ]


def test_load_predict_params_and_metadata(tmp_path: Path) -> None:
    flowml.pyfunc.save_model(
        tmp_path / "m", python_model=AddN(1), signature=infer_signature(x_data, x_data, {"k": 0})
    )
    model = flowml.pyfunc.load_model(tmp_path / "m")
    pd.testing.assert_frame_equal(model.predict(x_data), x_data + 1)
    pd.testing.assert_frame_equal(model.predict(x_data, params={"k": 10}), x_data + 11)
    assert isinstance(model.metadata, Model) and model.metadata.signature is not None
    assert model.integrity == "manifest"
    assert isinstance(model.unwrap_python_model(), AddN)
    with pytest.raises(FlowmlError, match="missing inputs"):
        model.predict(x_data[["a"]])


def test_predict_without_context_and_inferred_signature(tmp_path: Path) -> None:
    flowml.pyfunc.save_model(tmp_path / "m", python_model=NoContext(), input_example=x_data)
    model = flowml.pyfunc.load_model(str(tmp_path / "m"))
    assert model.metadata.signature is not None  # inferred from the example + a prediction
    pd.testing.assert_frame_equal(model.predict(x_data), x_data * 2)
    pd.testing.assert_frame_equal(model.smoke_test(), x_data * 2)
    out = validate_serving_input(
        str(tmp_path / "m"), (tmp_path / "m" / "serving_input_example.json").read_text()
    )
    pd.testing.assert_frame_equal(out, x_data * 2)


def test_artifacts_and_code_paths(tmp_path: Path) -> None:
    (tmp_path / "offset.txt").write_text("100")
    code = tmp_path / "mycode"
    code.mkdir()
    (code / "helper_mod_xyz.py").write_text("VALUE = 7\n")
    flowml.pyfunc.save_model(
        tmp_path / "m",
        python_model=WithArtifact(),
        artifacts={"offset": str(tmp_path / "offset.txt")},
        code_paths=[str(code / "helper_mod_xyz.py")],
    )
    conf = Model.load(tmp_path / "m").flavors["python_function"]
    assert conf["artifacts"]["offset"]["path"] == "artifacts/offset.txt" and conf["code"] == "code"
    model = flowml.pyfunc.load_model(tmp_path / "m")
    pd.testing.assert_frame_equal(model.predict(x_data), x_data + 100.0)
    import helper_mod_xyz  # type: ignore[import-not-found]  # put on sys.path by the loader

    assert helper_mod_xyz.VALUE == 7


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    flowml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1))
    with pytest.raises(FlowmlError) as err:
        flowml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1))
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_log_model_to_run_and_load_by_runs_uri(models_env: str) -> None:
    with flowml.start_run() as run:
        info = flowml.pyfunc.log_model(name="my_model", python_model=AddN(2), input_example=x_data)
    assert info.model_uri == f"models:/{info.model_id}"  # MLflow 3: a logged model
    assert info.run_id == run.info.run_id and info.artifact_path.endswith(f"/{info.model_id}/artifacts")
    assert (
        info.signature is not None
        and info.flavors["python_function"]["loader_module"] == "mlflow.pyfunc.model"
    )
    for uri in (info.model_uri, f"runs:/{run.info.run_id}/my_model"):
        model = flowml.pyfunc.load_model(uri)
        assert model.integrity == "manifest"
        assert model.metadata.run_id == run.info.run_id and model.metadata.artifact_path == info.artifact_path
        pd.testing.assert_frame_equal(model.predict(x_data), x_data + 2)
    assert flowml.FlowmlClient().get_artifact_checksums(run.info.run_id) == {}  # nothing under the run


def test_log_model_without_active_run_starts_none(models_env: str) -> None:
    info = flowml.pyfunc.log_model(name="model", python_model=AddN(0))  # MLflow 3: no run is started
    assert flowml.active_run() is None and info.run_id is None
    pd.testing.assert_frame_equal(flowml.pyfunc.load_model(info.model_uri).predict(x_data), x_data)


def test_models_uri_without_registry_is_clear() -> None:
    from flowml.models.uri import resolve_registry_uri

    for uri in ("models:/m/1", "models:/m/Production", "models:/m@champion", "models:/m/latest"):
        with pytest.raises(FlowmlError) as err:
            resolve_registry_uri(uri, client=object())  # a client without registry methods
        assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        assert "model registry is not available yet" in err.value.message
    with pytest.raises(FlowmlError, match="Not a valid models:/ URI"):
        flowml.pyfunc.load_model("models:/a/b/c")


def test_models_uri_through_the_registry(models_env: str, tmp_path: Path) -> None:
    client = flowml.FlowmlClient()
    with flowml.start_run() as run:
        info = flowml.pyfunc.log_model(name="m", python_model=AddN(4))
    client.create_registered_model("adder")
    mv = client.create_model_version("adder", info.model_uri, run_id=run.info.run_id)
    client.set_registered_model_alias("adder", "champion", mv.version)
    for uri in (f"models:/adder/{mv.version}", "models:/adder@champion", "models:/adder/latest"):
        model = flowml.pyfunc.load_model(uri)
        assert model.integrity == "manifest"
        pd.testing.assert_frame_equal(model.predict(x_data), x_data + 4)
    with pytest.raises(FlowmlError) as err:
        flowml.pyfunc.load_model("models:/nope/1")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # tamper with the registered files *and* their manifest: the run's record still catches it
    canary = tmp_path / "pwned"
    model_dir = Path(client.get_model_version_download_uri("adder", mv.version))
    (model_dir / "python_model.pkl").write_bytes(pickle.dumps(_Touch(str(canary))))
    from flowml.models.integrity import write_manifest

    write_manifest(str(model_dir))
    with pytest.raises(FlowmlError, match="recorded by the tracking store"):
        flowml.pyfunc.load_model("models:/adder@champion")
    assert not canary.exists()


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (open, (self.path, "w"))


def test_registry_seam_is_used_when_client_has_it(tmp_path: Path) -> None:
    from flowml.models.uri import parse_registry_uri, resolve_registry_uri

    class FakeRegistryClient:
        def get_model_version_download_uri(self, name: str, version: str) -> str:
            return f"/store/{name}/{version}"

        def get_model_version_by_alias(self, name: str, alias: str) -> object:
            return type("MV", (), {"version": "4"})()

        def get_latest_versions(self, name: str, stages: list[str] | None) -> list[object]:
            return [type("MV", (), {"version": v})() for v in ("2", "10")]

    fake = FakeRegistryClient()
    assert resolve_registry_uri("models:/m/3", fake) == "/store/m/3"
    assert resolve_registry_uri("models:/m@champ", fake) == "/store/m/4"
    assert resolve_registry_uri("models:/m/Staging", fake) == "/store/m/10"
    assert parse_registry_uri("models:/m/Staging").stage == "Staging"


def test_file_uri_and_missing_path(tmp_path: Path) -> None:
    flowml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1))
    assert flowml.pyfunc.load_model(f"file://{tmp_path / 'm'}").predict(x_data).iloc[0, 0] == 2.0
    with pytest.raises(FlowmlError) as err:
        flowml.pyfunc.load_model(tmp_path / "nope")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.s3
def test_s3_model_uri(
    s3_artifact_root: str, s3_endpoint_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowml.artifacts import get_artifact_repository
    from flowml.settings import get_settings

    monkeypatch.setenv("FLOWML_S3_ENDPOINT_URL", s3_endpoint_url)
    get_settings.cache_clear()
    flowml.pyfunc.save_model(tmp_path / "m", python_model=AddN(5))
    get_artifact_repository(s3_artifact_root, s3_endpoint_url=s3_endpoint_url).log_artifacts(
        tmp_path / "m", "m"
    )
    model = flowml.pyfunc.load_model(f"{s3_artifact_root}/m")
    assert model.integrity == "manifest"
    pd.testing.assert_frame_equal(model.predict(x_data), x_data + 5)
    get_settings.cache_clear()


def test_numpy_and_json_examples(tmp_path: Path) -> None:
    flowml.pyfunc.save_model(tmp_path / "n", python_model=NoContext(), input_example=np.ones((2, 3)))
    model = flowml.pyfunc.load_model(tmp_path / "n")
    assert model.metadata.saved_input_example_info["type"] == "ndarray"  # type: ignore[index]
    np.testing.assert_array_equal(model.smoke_test(), np.full((2, 3), 2.0))
