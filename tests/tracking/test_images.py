"""``mlflow.log_image`` / ``MlflowClient.log_image`` and ``mlflow.Image`` as MLflow 3.17 has them, compared
with the real mlflow package logging the same image into its own SQLite store: file names, thumbnail, run
tag, decoded pixels, and the same errors and warnings for bad input."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow as real_mlflow
import numpy as np
import pytest
from PIL import Image as PILImage

import flowml as mlflow
from flowml.client import FlowmlClient
from flowml.tracking.images import LOGGED_IMAGES_TAG
from tests.tracking.conftest import MlflowStore

RNG = np.random.default_rng(7)
IMAGES: dict[str, Callable[[], Any]] = {
    "rgb-uint8": lambda: RNG.integers(0, 256, (40, 300, 3), dtype=np.uint8),
    "gray-hw1-int64": lambda: RNG.integers(0, 256, (90, 20, 1), dtype=np.int64),
    "rgba-float": lambda: RNG.random((30, 30, 4)),
    "bool-mask": lambda: RNG.random((16, 24)) > 0.5,
    "pil-rgb": lambda: PILImage.fromarray(RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)),
}
_STEP_NAME = re.compile(
    r"^(?P<stem>.+\+step\+\d+\+timestamp\+\d+)\+(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"(?P<suffix>\.png|\+compressed\.webp)$"
)


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    """SQLite only: what is compared here is above the store (the contract suite covers PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'flowml.db'}"


def _image_files(artifact_root: str) -> dict[str, Path]:
    """``{name with the uuid replaced by <uuid>: path}`` of a run's ``images/`` files (one uuid per image)."""
    files = sorted((Path(artifact_root) / "images").iterdir())
    found: dict[str, Path] = {}
    uuids = set()
    for path in files:
        match = _STEP_NAME.match(path.name)
        assert match, path.name
        uuids.add(match["uuid"])
        found[f"{match['stem']}+<uuid>{match['suffix']}"] = path
    assert len(uuids) == 1  # the full image and its thumbnail share one uuid
    return found


def _pixels(path: Path) -> tuple[str, tuple[int, int], np.ndarray[Any, Any]]:
    with PILImage.open(path) as image:
        image.load()
        return image.mode, image.size, np.asarray(image)


@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_step_image_is_what_mlflow_logs(flowml_env: str, mlflow_store: MlflowStore, kind: str) -> None:
    image = IMAGES[kind]()
    theirs = mlflow_store.new_run()
    mlflow_store.client.log_image(theirs.info.run_id, image, key="train/sample 1.a", step=7, timestamp=1234)
    with mlflow.start_run() as run:
        mlflow.log_image(image, key="train/sample 1.a", step=7, timestamp=1234)
    ours_files, their_files = _image_files(run.info.artifact_uri), _image_files(theirs.info.artifact_uri)
    assert (
        sorted(ours_files)
        == sorted(their_files)
        == [
            "train~sample 1.a+step+7+timestamp+1234+<uuid>+compressed.webp",
            "train~sample 1.a+step+7+timestamp+1234+<uuid>.png",
        ]
    )
    for name, path in ours_files.items():
        mode, size, pixels = _pixels(path)
        their_mode, their_size, their_pixels = _pixels(their_files[name])
        assert (mode, size) == (their_mode, their_size)
        np.testing.assert_array_equal(pixels, their_pixels)
    thumb = _pixels(next(p for n, p in ours_files.items() if n.endswith(".webp")))[1]
    assert max(thumb) == 256
    tag = mlflow.get_run(run.info.run_id).data.tags[LOGGED_IMAGES_TAG]
    assert tag == mlflow_store.client.get_run(theirs.info.run_id).data.tags[LOGGED_IMAGES_TAG] == "True"


def test_step_and_timestamp_defaults(flowml_env: str) -> None:
    with mlflow.start_run() as run:
        mlflow.log_image(np.zeros((4, 4), dtype=np.uint8), key="k")
        mlflow.log_image(np.zeros((4, 4), dtype=np.uint8), key="k", step=2)
    names = sorted(_STEP_NAME.match(p.path.split("/")[-1])["stem"] for p in mlflow.artifacts.list_artifacts(
        run_id=run.info.run_id, artifact_path="images"
    ) if p.path.endswith(".png"))  # fmt: skip
    assert [n.split("+")[:3] for n in names] == [["k", "step", "0"], ["k", "step", "2"]]
    stamp = int(names[0].split("+")[-1])
    assert abs(stamp - run.info.start_time) < 60_000


def test_artifact_file_image_has_mlflows_bytes(flowml_env: str, mlflow_store: MlflowStore) -> None:
    array = RNG.integers(0, 256, (33, 17, 3), dtype=np.uint8)
    theirs = mlflow_store.new_run()
    mlflow_store.client.log_image(theirs.info.run_id, array, "plots/deep/a.png")
    mlflow_store.client.log_image(theirs.info.run_id, real_mlflow.Image(array), "b.jpg")
    client = FlowmlClient()
    run = client.create_run("0")
    client.log_image(run.info.run_id, array, "plots/deep/a.png")
    client.log_image(run.info.run_id, mlflow.Image(array), "b.jpg")
    for rel in ("plots/deep/a.png", "b.jpg"):
        ours = (Path(run.info.artifact_uri) / rel).read_bytes()
        assert ours == (Path(theirs.info.artifact_uri) / rel).read_bytes()
    assert LOGGED_IMAGES_TAG not in client.get_run(run.info.run_id).data.tags  # only the key= mode tags
    loaded = mlflow.artifacts.load_image(f"runs:/{run.info.run_id}/plots/deep/a.png")
    np.testing.assert_array_equal(np.asarray(loaded), array)


def test_out_of_range_floats_are_rescaled_with_mlflows_warning(
    flowml_env: str, mlflow_store: MlflowStore
) -> None:
    array = np.linspace(-2.0, 3.0, 60).reshape(6, 10)
    theirs = mlflow_store.new_run()
    with pytest.warns(UserWarning, match="Float pixel values out of acceptable range") as their_warning:
        mlflow_store.client.log_image(theirs.info.run_id, array, "f.png")
    with (
        pytest.warns(UserWarning, match="Float pixel values out of acceptable range") as our_warning,
        mlflow.start_run() as run,
    ):
        mlflow.log_image(array, "f.png")
    assert [str(w.message) for w in our_warning] == [str(w.message) for w in their_warning]
    assert "Rescaling values to [0.0, 1.0]" in str(our_warning[0].message)
    np.testing.assert_array_equal(
        _pixels(Path(run.info.artifact_uri) / "f.png")[2],
        _pixels(Path(theirs.info.artifact_uri) / "f.png")[2],
    )


BAD_CALLS: dict[str, tuple[Any, dict[str, Any]]] = {
    "file-and-key": (np.zeros((2, 2), np.uint8), {"artifact_file": "a.png", "key": "k"}),
    "file-and-step": (np.zeros((2, 2), np.uint8), {"artifact_file": "a.png", "step": 1}),
    "neither": (np.zeros((2, 2), np.uint8), {}),
    "int-out-of-range": (np.array([[0, 300]]), {"artifact_file": "a.png"}),
    "negative-int": (np.array([[-1, 3]], dtype=np.int8), {"key": "k"}),
    "complex-dtype": (np.zeros((2, 2), np.complex64), {"artifact_file": "a.png"}),
    "string-dtype": (np.array([["a"]]), {"artifact_file": "a.png"}),
    "4d": (np.zeros((2, 2, 2, 2), np.uint8), {"artifact_file": "a.png"}),
    "1d": (np.zeros(4, np.uint8), {"artifact_file": "a.png"}),
    "two-channels": (np.zeros((2, 2, 2), np.uint8), {"artifact_file": "a.png"}),
    "list": ([[0, 1]], {"artifact_file": "a.png"}),
    "bad-key": (np.zeros((2, 2), np.uint8), {"key": "a#b"}),
    "bad-key-colon": (np.zeros((2, 2), np.uint8), {"key": "c:d"}),
}


def test_bad_input_fails_as_in_mlflow(flowml_env: str, mlflow_store: MlflowStore) -> None:
    theirs = mlflow_store.new_run()
    client = FlowmlClient()
    run = client.create_run("0")
    for case, (image, kwargs) in BAD_CALLS.items():
        with pytest.raises(Exception) as their_error:  # noqa: PT011 - the class is what is compared
            mlflow_store.client.log_image(theirs.info.run_id, image, **kwargs)
        with pytest.raises(type(their_error.value)) as our_error:
            client.log_image(run.info.run_id, image, **kwargs)
        assert str(our_error.value) == str(their_error.value), case
    assert client.list_artifacts(run.info.run_id) == []
    assert LOGGED_IMAGES_TAG not in client.get_run(run.info.run_id).data.tags


def test_image_object_matches_mlflow_image(tmp_path: Path) -> None:
    array = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    ours, theirs = mlflow.Image(array), real_mlflow.Image(array)
    assert ours.size == theirs.size == (7, 5)
    assert ours.to_list() == theirs.to_list()
    np.testing.assert_array_equal(ours.to_array(), theirs.to_array())
    assert ours.resize((3, 2)).to_list() == theirs.resize((3, 2)).to_list()
    ours.save(str(tmp_path / "x.png"))
    assert mlflow.Image(str(tmp_path / "x.png")).to_list() == theirs.to_list()
    assert mlflow.Image(array.tolist()).to_list() == theirs.to_list()  # nested lists too
    with pytest.raises(TypeError, match="Unsupported image object type"):
        mlflow.Image(3)


def test_log_image_to_a_server(flowml_env: str, tmp_path: Path) -> None:
    """Over an ``http://`` tracking URI: files go through the artifact proxy, the tag through REST."""
    from tests.fixtures.server import serve_in_thread

    array = RNG.integers(0, 256, (64, 48, 3), dtype=np.uint8)
    with serve_in_thread(flowml_env, str(tmp_path / "served")) as url:
        mlflow.set_tracking_uri(url)
        with mlflow.start_run() as run, warnings.catch_warnings():
            warnings.simplefilter("error")
            mlflow.log_image(array, key="val/img", step=1)
            mlflow.log_image(PILImage.fromarray(array), "pics/a.png")
        assert run.info.artifact_uri.startswith("mlflow-artifacts:")
        listed = mlflow.artifacts.list_artifacts(run_id=run.info.run_id, artifact_path="images")
        assert sorted(_STEP_NAME.match(f.path.split("/")[-1])["suffix"] for f in listed) == [
            "+compressed.webp",
            ".png",
        ]
        png = next(f.path for f in listed if f.path.endswith(".png"))
        np.testing.assert_array_equal(
            np.asarray(mlflow.artifacts.load_image(f"runs:/{run.info.run_id}/{png}")), array
        )
        np.testing.assert_array_equal(
            np.asarray(mlflow.artifacts.load_image(f"{run.info.artifact_uri}/pics/a.png")), array
        )
        assert mlflow.get_run(run.info.run_id).data.tags[LOGGED_IMAGES_TAG] == "True"
