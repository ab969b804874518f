"""``resolve_source``: which model-version sources the store accepts (pure, with fake lookups)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flowml.entities_registry import ModelUri
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.store._registry_source import resolve_source

RUN = "0123456789abcdef0123456789abcdef"


def _resolve(source: str, root: str, run_id: str | None = None) -> str | None:
    def run_uri(run: str) -> str:
        return f"{root}/0/{run}/artifacts"

    def model_location(uri: ModelUri) -> str:
        return f"{root}/models/{uri.name}"

    return resolve_source(
        source, run_id=run_id, run_artifact_uri=run_uri, model_location=model_location, allowed_roots=[root]
    )


def test_runs_and_models_uris_resolve(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert _resolve(f"runs:/{RUN}/model", root) == f"{root}/0/{RUN}/artifacts/model"
    assert _resolve(f"runs:/{RUN}", root, RUN) == f"{root}/0/{RUN}/artifacts"
    assert _resolve("models:/m@champion/sub", root) == f"{root}/models/m/sub"
    assert _resolve(f"{root}/x/model", root) is None


@pytest.mark.parametrize(
    "source",
    [
        "s3://bucket/prefix/../other",
        "s3://bucket/prefixed/x",
        "s3://other/prefix/x",
        "s3://bucket/prefix/x?versionId=1",
        "s3://bucket/prefix/x;p=1",
    ],
)
def test_s3_sources_must_sit_inside_the_s3_root(source: str) -> None:
    with pytest.raises(InvalidParameterValue):
        _resolve(source, "s3://bucket/prefix")


def test_s3_source_inside_the_root_is_accepted() -> None:
    assert _resolve("s3://bucket/prefix/0/abc/artifacts/model", "s3://bucket/prefix") is None


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "link")
    with pytest.raises(InvalidParameterValue):
        _resolve(str(root / "link" / "model"), str(root))


@pytest.mark.parametrize(
    "source",
    ["", "   ", "relative/path", "runs:/", "runs://host/x", "models:/", "x\x00y", "a" * 5000],
)
def test_malformed_sources(tmp_path: Path, source: str) -> None:
    with pytest.raises(InvalidParameterValue):
        _resolve(source, str(tmp_path))


def test_run_scoped_sources(tmp_path: Path) -> None:
    root = str(tmp_path)
    other = "fedcba9876543210fedcba9876543210"
    assert _resolve(f"{root}/0/{RUN}/artifacts/model", root, RUN) is None
    with pytest.raises(InvalidParameterValue):
        _resolve(f"{root}/0/{other}/artifacts/model", root, RUN)
    with pytest.raises(InvalidParameterValue):
        _resolve(f"{root}/shared", root, RUN)
    assert _resolve(f"mlflow-artifacts:/0/{RUN}/artifacts/model", root, RUN) is None
    with pytest.raises(InvalidParameterValue):
        _resolve(f"mlflow-artifacts:/0/{other}/artifacts/model", root, RUN)


def test_a_logged_model_uri_resolves_to_the_logged_models_files(tmp_path: Path) -> None:
    """MLflow 3 registers ``models:/<model_id>`` when the run holds no ``model`` artifacts."""
    root = str(tmp_path)
    models = {"m-0123456789abcdef0123456789abcdef": f"{root}/1/models/m-0123/artifacts"}

    def logged(model_id: str) -> str:
        if model_id not in models:
            raise ResourceDoesNotExist(f"Logged model with ID '{model_id}' not found.")
        return models[model_id]

    def resolve(source: str) -> str | None:
        return resolve_source(
            source,
            run_id=RUN,
            run_artifact_uri=lambda run: f"{root}/0/{run}/artifacts",
            model_location=lambda uri: f"{root}/models/{uri.name}",
            allowed_roots=[root],
            logged_model_location=logged,
        )

    assert resolve("models:/m-0123456789abcdef0123456789abcdef") == f"{root}/1/models/m-0123/artifacts"
    with pytest.raises(ResourceDoesNotExist):
        resolve("models:/m-ffffffffffffffffffffffffffffffff")
    with pytest.raises(InvalidParameterValue):  # a logged model has no versions or paths below it
        resolve("models:/m-0123456789abcdef0123456789abcdef/../../etc")
    with pytest.raises(InvalidParameterValue):  # without a way to look logged models up
        _resolve("models:/m-0123456789abcdef0123456789abcdef", root)


def test_a_runs_logged_model_location_is_the_runs_but_nothing_broader(tmp_path: Path) -> None:
    """With ``run_id``, a path source may be the run's artifacts or one of the run's logged models'
    artifact locations (MLflow 3's ``ModelInfo.artifact_path``); not another run's, not their parent."""
    root = str(tmp_path)
    mine, theirs = f"{root}/1/models/m-aa/artifacts", f"{root}/1/models/m-bb/artifacts"
    owners = {RUN: [mine], "fedcba9876543210fedcba9876543210": [theirs]}

    def resolve(source: str, locations: bool = True) -> str | None:
        return resolve_source(
            source,
            run_id=RUN,
            run_artifact_uri=lambda run: f"{root}/1/{run}/artifacts",
            model_location=lambda uri: f"{root}/models/{uri.name}",
            allowed_roots=[root],
            run_model_locations=(lambda run: owners.get(run, [])) if locations else None,
        )

    assert resolve(mine) is None and resolve(f"{mine}/sub") is None
    assert resolve("mlflow-artifacts:/1/models/m-aa/artifacts") is None
    for source in (
        theirs,
        f"{root}/1/models",
        f"{root}/1/models/m-aa",
        "mlflow-artifacts:/1/models/m-bb/artifacts",
    ):
        with pytest.raises(InvalidParameterValue, match="outside the artifact location"):
            resolve(source)
    with pytest.raises(InvalidParameterValue):  # without the lookup, only the run's own artifacts
        resolve(mine, locations=False)
