"""Integrity: a tampered model is refused before anything in it is unpickled or imported."""

from __future__ import annotations

import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import flowml
import flowml.pyfunc
import flowml.sklearn
from flowml.exceptions import FlowmlError
from flowml.models.integrity import ModelIntegrityError
from tests.models.model_classes import AddN

x_data = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})


class _Payload:
    """Unpickling this creates ``path`` (stand-in for arbitrary code execution)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (open, (self.path, "w"))


def _evil_pickle(canary: Path) -> bytes:
    return pickle.dumps(_Payload(str(canary)))


def test_payload_really_executes_when_unpickled(tmp_path: Path) -> None:
    """Sanity check of the test payload itself."""
    canary = tmp_path / "canary"
    pickle.loads(_evil_pickle(canary)).close()
    assert canary.exists()


@pytest.mark.parametrize("flavor", ["pyfunc", "sklearn"])
def test_tampered_pickle_is_refused_before_unpickling(tmp_path: Path, flavor: str) -> None:
    canary = tmp_path / "pwned"
    if flavor == "pyfunc":
        flowml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1))
        target = tmp_path / "m" / "python_model.pkl"
    else:
        flowml.sklearn.save_model(LogisticRegression().fit(x_data, [0, 1]), tmp_path / "m")
        target = tmp_path / "m" / "model.pkl"
    target.write_bytes(_evil_pickle(canary))
    with pytest.raises(ModelIntegrityError) as err:
        flowml.pyfunc.load_model(tmp_path / "m")
    assert err.value.error_code == "DATA_LOSS"
    assert target.name in err.value.message and "modified" in err.value.message
    if flavor == "sklearn":
        with pytest.raises(ModelIntegrityError):
            flowml.sklearn.load_model(tmp_path / "m")
    assert not canary.exists()


def test_one_flipped_byte_and_extra_or_missing_files(tmp_path: Path) -> None:
    flowml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1))
    mlmodel = tmp_path / "m" / "MLmodel"
    original = mlmodel.read_bytes()
    mlmodel.write_bytes(original[:-2] + bytes([original[-2] ^ 1]) + original[-1:])
    with pytest.raises(ModelIntegrityError, match="MLmodel"):
        flowml.pyfunc.load_model(tmp_path / "m")
    mlmodel.write_bytes(original)
    (tmp_path / "m" / "code").mkdir()
    (tmp_path / "m" / "code" / "sneaky.py").write_text("raise SystemExit")
    with pytest.raises(ModelIntegrityError, match="unexpected"):
        flowml.pyfunc.load_model(tmp_path / "m")
    os.remove(tmp_path / "m" / "code" / "sneaky.py")
    os.rmdir(tmp_path / "m" / "code")
    os.remove(tmp_path / "m" / "conda.yaml")
    with pytest.raises(ModelIntegrityError, match="missing"):
        flowml.pyfunc.load_model(tmp_path / "m")


def test_symlink_is_refused(tmp_path: Path) -> None:
    flowml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1))
    os.symlink("/etc/passwd", tmp_path / "m" / "link")
    with pytest.raises(ModelIntegrityError, match="symlink"):
        flowml.pyfunc.load_model(tmp_path / "m")


def test_tampered_run_artifact_refused_even_with_rewritten_manifest(models_env: str, tmp_path: Path) -> None:
    """An attacker who rewrites both the pickle and the manifest in storage is caught by the run's record."""
    canary = tmp_path / "pwned"
    flowml.pyfunc.save_model(tmp_path / "saved", python_model=AddN(1))
    with flowml.start_run() as run:  # a model logged under the run's artifacts (before MLflow 3)
        flowml.FlowmlClient().log_artifacts(run.info.run_id, str(tmp_path / "saved"), "m")
    model_uri = f"runs:/{run.info.run_id}/m"
    model_dir = Path(flowml.FlowmlClient().get_run(run.info.run_id).info.artifact_uri) / "m"
    (model_dir / "python_model.pkl").write_bytes(_evil_pickle(canary))
    from flowml.models.integrity import write_manifest

    write_manifest(str(model_dir))  # a consistent, forged manifest
    with pytest.raises(ModelIntegrityError, match="recorded by the tracking store"):
        flowml.pyfunc.load_model(model_uri)
    (model_dir / "flowml_checksums.json").unlink()  # ... or no manifest at all
    with pytest.raises(ModelIntegrityError, match="recorded by the tracking store"):
        flowml.pyfunc.load_model(model_uri)
    assert not canary.exists()


def test_forged_manifest_alone_is_caught_locally(tmp_path: Path) -> None:
    flowml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1))
    manifest = tmp_path / "m" / "flowml_checksums.json"
    data = json.loads(manifest.read_text())
    data["files"]["python_model.pkl"]["sha256"] = "0" * 64
    manifest.write_text(json.dumps(data))
    with pytest.raises(ModelIntegrityError, match=r"python_model\.pkl"):
        flowml.pyfunc.load_model(tmp_path / "m")


def test_model_without_manifest_loads_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    flowml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1))
    (tmp_path / "m" / "flowml_checksums.json").unlink()
    with caplog.at_level(logging.WARNING, logger="flowml.models.integrity"):
        model = flowml.pyfunc.load_model(tmp_path / "m")
    assert model.integrity == "unverified"
    assert "integrity" in caplog.text and "cannot be checked" in caplog.text


def test_allow_pickle_kill_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flowml.pyfunc.save_model(tmp_path / "m", python_model=AddN(1))
    monkeypatch.setenv("FLOWML_ALLOW_PICKLE", "false")
    with pytest.raises(FlowmlError) as err:
        flowml.pyfunc.load_model(tmp_path / "m")
    assert err.value.error_code == "PERMISSION_DENIED"
