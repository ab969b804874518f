"""``mlflow.artifacts`` (``download_artifacts``, ``list_artifacts``, ``load_text``, ``load_dict``,
``load_image``) with ``import flowml as mlflow``, compared call by call with the real mlflow package on the
same artifact tree; then over ``http://`` (a real flowml server: proxy URIs, ``models:/``) and ``s3://``."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow as real_mlflow
import numpy as np
import pytest

import flowml as mlflow
from flowml.client import FlowmlClient
from tests.tracking.conftest import MlflowStore

FILES: dict[str, bytes] = {
    "a/b/c/t.txt": "héllo wörld".encode(),
    "a/b/top.txt": b"top",
    "a/x.json": json.dumps({"k": [1, 2]}).encode(),
    "notes.txt": b"notes",
    "bad/latin1.txt": "caf\xe9".encode("latin-1"),
    "bad/not.json": b"{nope",
    "bad/not-image.png": b"plain text",
}


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    """SQLite only: the functions under test sit above the store (the contract suite covers PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'flowml.db'}"


def _write_tree(tmp_path: Path) -> Path:
    src = tmp_path / "tree"
    for rel, data in FILES.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    return src


@pytest.fixture
def pair(flowml_env: str, mlflow_store: MlflowStore, tmp_path: Path) -> tuple[Any, Any]:
    """The same artifact tree in a real-mlflow run and in a flowml run: (their run, our run)."""
    src = _write_tree(tmp_path)
    theirs = mlflow_store.new_run()
    mlflow_store.client.log_artifacts(theirs.info.run_id, str(src))
    with mlflow.start_run() as ours:
        mlflow.log_artifacts(src)
    return theirs, ours


def _infos(infos: list[Any]) -> list[tuple[str, bool, int | None]]:
    return sorted((i.path, i.is_dir, i.file_size) for i in infos)


# (name, call) with call(api, run_id, artifact_root, tracking_uri): the same call to either package
LISTS: list[tuple[str, Callable[[Any, str, str, str], Any]]] = [
    ("run", lambda a, r, root, t: a.list_artifacts(run_id=r, tracking_uri=t)),
    ("run+path", lambda a, r, root, t: a.list_artifacts(run_id=r, artifact_path="a/b", tracking_uri=t)),
    ("runs-uri", lambda a, r, root, t: a.list_artifacts(artifact_uri=f"runs:/{r}/a/b", tracking_uri=t)),
    ("runs-uri-top", lambda a, r, root, t: a.list_artifacts(artifact_uri=f"runs:/{r}/a", tracking_uri=t)),
    (
        "runs-uri-file",
        lambda a, r, root, t: a.list_artifacts(artifact_uri=f"runs:/{r}/notes.txt", tracking_uri=t),
    ),
    ("path", lambda a, r, root, t: a.list_artifacts(artifact_uri=f"{root}/a")),
    ("root", lambda a, r, root, t: a.list_artifacts(artifact_uri=root)),
    ("file-uri", lambda a, r, root, t: a.list_artifacts(artifact_uri=f"file://{root}/a/b")),
    ("missing", lambda a, r, root, t: a.list_artifacts(artifact_uri=f"{root}/nope")),
]


def test_list_artifacts_matches_mlflow(pair: tuple[Any, Any], mlflow_store: MlflowStore) -> None:
    theirs, ours = pair
    for case, call in LISTS:  # one store pair for every case: the pair is the slow part
        expected = _infos(
            call(real_mlflow.artifacts, theirs.info.run_id, theirs.info.artifact_uri, mlflow_store.uri)
        )
        got = _infos(call(mlflow.artifacts, ours.info.run_id, ours.info.artifact_uri, None))
        assert got == expected, case
        assert got or case in ("missing", "runs-uri-file"), case


def _tree(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


DOWNLOADS: list[tuple[str, Callable[[Any, str, str, str | None, str], str]]] = [
    ("run", lambda a, r, root, d, t: a.download_artifacts(run_id=r, dst_path=d, tracking_uri=t)),
    (
        "run+dir",
        lambda a, r, root, d, t: a.download_artifacts(
            run_id=r, artifact_path="a/b", dst_path=d, tracking_uri=t
        ),
    ),
    (
        "run+file",
        lambda a, r, root, d, t: a.download_artifacts(
            run_id=r, artifact_path="a/x.json", dst_path=d, tracking_uri=t
        ),
    ),
    ("runs-uri", lambda a, r, root, d, t: a.download_artifacts(f"runs:/{r}/a/b", dst_path=d, tracking_uri=t)),
    (
        "runs-uri-slash",
        lambda a, r, root, d, t: a.download_artifacts(f"runs:/{r}/a/", dst_path=d, tracking_uri=t),
    ),
    ("path", lambda a, r, root, d, t: a.download_artifacts(f"{root}/a", dst_path=d)),
    ("file-uri", lambda a, r, root, d, t: a.download_artifacts(f"file://{root}/a/b/c/t.txt", dst_path=d)),
]


@pytest.mark.parametrize("to_dst", [True, False], ids=["dst", "no-dst"])
def test_download_artifacts_matches_mlflow(
    pair: tuple[Any, Any], mlflow_store: MlflowStore, tmp_path: Path, to_dst: bool
) -> None:
    """Same returned path (relative to ``dst_path``, or in place / in a temp dir without one), same files."""
    theirs, ours = pair
    for n, (case, call) in enumerate(DOWNLOADS):
        their_dst, our_dst = (tmp_path / f"theirs{n}", tmp_path / f"ours{n}") if to_dst else (None, None)
        their_path = call(
            real_mlflow.artifacts,
            theirs.info.run_id,
            theirs.info.artifact_uri,
            their_dst and str(their_dst),
            mlflow_store.uri,
        )
        our_path = call(
            mlflow.artifacts, ours.info.run_id, ours.info.artifact_uri, our_dst and str(our_dst), None
        )
        assert _where(our_path, ours.info.artifact_uri, our_dst) == _where(
            their_path, theirs.info.artifact_uri, their_dst
        ), case
        assert _tree(Path(our_path)) == _tree(Path(their_path)), case
        assert _tree(Path(our_path)), case


def _where(path: str, root: str, dst: Path | None) -> str:
    """A downloaded path: relative to ``dst``, else in place below the run's root or copied elsewhere."""
    if dst is not None:
        return Path(path).relative_to(dst).as_posix()
    return "in-place:" + Path(path).relative_to(root).as_posix() if path.startswith(root) else "copied"


ERRORS: list[tuple[str, Callable[[Any, str, str, str], Any]]] = [
    ("no-target", lambda a, r, root, t: a.download_artifacts()),
    ("both-targets", lambda a, r, root, t: a.download_artifacts(f"{root}/a", run_id=r)),
    ("uri-and-path", lambda a, r, root, t: a.download_artifacts(f"{root}/a", artifact_path="b")),
    ("list-no-target", lambda a, r, root, t: a.list_artifacts()),
    ("list-uri-and-path", lambda a, r, root, t: a.list_artifacts(artifact_uri=root, artifact_path="a")),
    ("missing-local", lambda a, r, root, t: a.download_artifacts(f"{root}/nope")),
    ("missing-in-run", lambda a, r, root, t: a.download_artifacts(f"runs:/{r}/nope", tracking_uri=t)),
    ("unknown-run", lambda a, r, root, t: a.download_artifacts(run_id="0" * 32, tracking_uri=t)),
    ("model-id-as-uri", lambda a, r, root, t: a.download_artifacts("m-0123", tracking_uri=t)),
    ("not-utf8-text", lambda a, r, root, t: a.load_text(f"{root}/bad/latin1.txt")),
    ("not-utf8-dict", lambda a, r, root, t: a.load_dict(f"{root}/bad/latin1.txt")),
    ("not-json", lambda a, r, root, t: a.load_dict(f"{root}/bad/not.json")),
    ("not-an-image", lambda a, r, root, t: a.load_image(f"{root}/bad/not-image.png")),
]


def test_errors_match_mlflow(pair: tuple[Any, Any], mlflow_store: MlflowStore) -> None:
    theirs, ours = pair
    for case, call in ERRORS:
        with pytest.raises(real_mlflow.MlflowException) as their_error:
            call(real_mlflow.artifacts, theirs.info.run_id, theirs.info.artifact_uri, mlflow_store.uri)
        with pytest.raises(mlflow.MlflowException) as our_error:
            call(mlflow.artifacts, ours.info.run_id, ours.info.artifact_uri, None)
        their_message = str(their_error.value.message).replace(theirs.info.artifact_uri, "<root>")
        assert str(our_error.value.message).replace(ours.info.artifact_uri, "<root>") == their_message, case
        assert our_error.value.error_code == their_error.value.error_code, case


def test_loads_match_mlflow(pair: tuple[Any, Any]) -> None:
    theirs, ours = pair
    for rel in ("a/b/c/t.txt", "notes.txt"):
        assert mlflow.artifacts.load_text(f"runs:/{ours.info.run_id}/{rel}") == FILES[rel].decode()
        assert mlflow.artifacts.load_text(
            f"{ours.info.artifact_uri}/{rel}"
        ) == real_mlflow.artifacts.load_text(f"{theirs.info.artifact_uri}/{rel}")
    assert mlflow.artifacts.load_dict(f"runs:/{ours.info.run_id}/a/x.json") == {"k": [1, 2]}
    assert mlflow.artifacts.load_dict(f"file://{ours.info.artifact_uri}/a/x.json") == {"k": [1, 2]}


def test_artifacts_is_an_attribute_of_plain_import_flowml() -> None:
    code = "import flowml; print(flowml.artifacts.load_dict.__module__, callable(flowml.log_image))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["flowml.artifacts._fluent", "True"]


def test_mlflow_artifacts_uri_needs_an_http_tracking_uri(flowml_env: str) -> None:
    with pytest.raises(mlflow.MlflowException, match="must be a valid http or https URI") as err:
        mlflow.artifacts.download_artifacts("mlflow-artifacts:/0/abc/artifacts/x.txt")
    assert "sqlite://" in str(err.value)


def test_over_a_flowml_server(flowml_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``http://`` tracking URI: ``run_id=``, ``runs:/``, ``mlflow-artifacts:/`` and ``models:/`` URIs through
    the server's artifact proxy; listings equal what the real mlflow package reads from the same server."""
    from tests.fixtures.server import serve_in_thread

    src = _write_tree(tmp_path)
    with serve_in_thread(flowml_env, str(tmp_path / "served")) as url:
        mlflow.set_tracking_uri(url)
        with mlflow.start_run() as run:
            mlflow.log_artifacts(src)
            mlflow.log_image(np.full((8, 8, 3), 200, np.uint8), "img/sq.png")
        rid, root = run.info.run_id, run.info.artifact_uri
        assert root.startswith("mlflow-artifacts:/")
        a = mlflow.artifacts
        for kwargs in (
            {"run_id": rid},
            {"run_id": rid, "artifact_path": "a/b"},
            {"artifact_uri": f"runs:/{rid}/a"},
        ):
            got = _infos(a.list_artifacts(**kwargs))
            assert got == _infos(real_mlflow.artifacts.list_artifacts(**kwargs, tracking_uri=url)), kwargs
            assert got
        assert _infos(a.list_artifacts(artifact_uri=f"{root}/a/b")) == [
            ("b/c", True, None),
            ("b/top.txt", False, 3),
        ]

        whole = a.download_artifacts(run_id=rid, dst_path=str(tmp_path / "whole"))
        assert whole == str(tmp_path / "whole")
        assert {k: v for k, v in _tree(Path(whole)).items() if not k.startswith("img/")} == FILES
        part = a.download_artifacts(f"{root}/a/b", dst_path=str(tmp_path / "part"))
        assert part == str(tmp_path / "part" / "b")
        assert _tree(Path(part)) == {"c/t.txt": FILES["a/b/c/t.txt"], "top.txt": b"top"}
        copied = a.download_artifacts(f"runs:/{rid}/notes.txt")  # no dst: a new temp dir
        assert Path(copied).read_bytes() == b"notes"
        assert a.load_text(f"runs:/{rid}/a/b/c/t.txt") == "héllo wörld"
        assert a.load_dict(f"{root}/a/x.json") == {"k": [1, 2]}
        assert a.load_image(f"runs:/{rid}/img/sq.png").getpixel((3, 3)) == (200, 200, 200)

        model_files = {"MLmodel": b"flavors: {}\n", "b/top.txt": b"top"}
        for rel, data in model_files.items():
            mlflow.log_text(data.decode(), f"model/{rel}", run_id=rid)
        version = mlflow.register_model(f"runs:/{rid}/model", "artifact-api-model")
        model_dir = a.download_artifacts(
            f"models:/artifact-api-model/{version.version}", dst_path=str(tmp_path / "m")
        )
        assert model_dir == str(tmp_path / "m")  # the model's files land in dst_path itself, as in MLflow
        assert _tree(Path(model_dir)) == model_files
        assert a.load_text("models:/artifact-api-model/1/b/top.txt") == "top"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)  # mlflow's list_artifacts takes no registry_uri
        assert _infos(a.list_artifacts("models:/artifact-api-model/1/b")) == [("b/top.txt", False, 3)]
        assert _infos(a.list_artifacts("models:/artifact-api-model/1/b")) == _infos(
            real_mlflow.artifacts.list_artifacts("models:/artifact-api-model/1/b", tracking_uri=url)
        )
        with pytest.raises(mlflow.MlflowException) as err:
            a.download_artifacts(f"runs:/{rid}/nope", dst_path=str(tmp_path / "x"))
        assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.s3
def test_s3_artifacts(
    flowml_env: str,
    s3_artifact_root: str,
    s3_endpoint_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from flowml.settings import get_settings

    monkeypatch.setenv("FLOWML_ARTIFACT_ROOT", s3_artifact_root)
    monkeypatch.setenv("FLOWML_S3_ENDPOINT_URL", s3_endpoint_url)
    get_settings.cache_clear()
    client = FlowmlClient()
    experiment_id = client.create_experiment("on-s3", artifact_location=f"{s3_artifact_root}/exp")
    run = client.create_run(experiment_id)
    client.log_artifacts(run.info.run_id, _write_tree(tmp_path))
    root = run.info.artifact_uri
    assert root.startswith("s3://")
    a = mlflow.artifacts
    assert _infos(a.list_artifacts(artifact_uri=f"{root}/a")) == [
        ("a/b", True, None),
        ("a/x.json", False, len(FILES["a/x.json"])),
    ]
    assert _infos(a.list_artifacts(artifact_uri=f"runs:/{run.info.run_id}/a")) == _infos(
        a.list_artifacts(artifact_uri=f"{root}/a")
    )
    part = a.download_artifacts(f"{root}/a/b", dst_path=str(tmp_path / "dl"))
    assert part == str(tmp_path / "dl" / "b")
    assert _tree(Path(part)) == {"c/t.txt": FILES["a/b/c/t.txt"], "top.txt": b"top"}
    assert a.load_dict(f"{root}/a/x.json") == {"k": [1, 2]}
    assert a.load_text(f"runs:/{run.info.run_id}/notes.txt") == "notes"
    assert _tree(Path(a.download_artifacts(run_id=run.info.run_id))) == FILES  # no dst: a temp dir
    with pytest.raises(mlflow.MlflowException) as err:
        a.load_text(f"{root}/nope.txt")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
