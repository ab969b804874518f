"""flowml.data against the real mlflow.data, in the same process: same dicts, digests, schemas, sources."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow.data
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

import flowml.data
from flowml.data._context import _git_tags
from flowml.entities import Dataset as DatasetEntity
from flowml.entities import DatasetInput
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from flowml.models.signature import Schema

# MLflow warns about integer columns and about local paths matching two of its sources, and pandas 3
# about MLflow's pandas calls. flowml's own silence is tested in test_building_datasets_emits_no_warnings.
pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::FutureWarning", "ignore::DeprecationWarning"
)

_RNG = np.random.default_rng(7)
_BIG = 25_000

FRAMES: dict[str, Callable[[], pd.DataFrame]] = {
    "numeric": lambda: pd.DataFrame({"a": [1, 2, 3], "b": [1.5, 2.5, np.nan]}),
    "strings": lambda: pd.DataFrame({"s": ["x", "y", "z"], "t": ["u", "v", "w"]}),
    "mixed_object": lambda: pd.DataFrame({"m": [1, "a", 2.5], "n": [1, 2, 3]}),
    "dtypes": lambda: pd.DataFrame(
        {
            "i8": np.arange(4, dtype="int8"),
            "i32": np.arange(4, dtype="int32"),
            "i64": np.arange(4, dtype="int64"),
            "u16": np.arange(4, dtype="uint16"),
            "f32": np.linspace(0, 1, 4, dtype="float32"),
            "f64": np.linspace(0, 1, 4),
            "flag": [True, False, True, True],
        }
    ),
    "big": lambda: pd.DataFrame(
        {
            "x": _RNG.normal(size=_BIG),
            "y": _RNG.integers(0, 5, _BIG),
            "s": [f"row{i}" for i in range(_BIG)],
        }
    ),
    "text_turns_mixed_after_cap": lambda: pd.DataFrame({"s": ["a"] * 10_001 + [1], "n": range(10_002)}),
    "missing_values": lambda: pd.DataFrame(
        {
            "s": ["a", None, "c"],
            "none": [None, None, None],
            "when": pd.to_datetime(["2020-01-01", None, "2021-06-01"]),
        }
    ),
    "nullable_extension": lambda: pd.DataFrame(
        {
            "I": pd.array([1, None, 3], dtype="Int64"),
            "B": pd.array([True, None, False], dtype="boolean"),
            "S": pd.array(["a", None, "b"], dtype="string"),
            "cat": pd.Categorical(["a", "b", "a"]),
        }
    ),
    "lists_and_dicts": lambda: pd.DataFrame(
        {
            "l": [[1, 2], [3], []],
            "d": [{"a": 1}, {"a": 2, "b": "x"}, None],
            "n": [[[1]], [[2, 3], []], None],
            "o": [{"a": {"b": [1]}}, {"a": {"c": "x"}}, {}],
        }
    ),
    "int_labels": lambda: pd.DataFrame([[1, 2], [3, 4]]),
    "unsorted_labels": lambda: pd.DataFrame({"b": [1], "a": ["q"], "c": [True]}),
    "bytes_and_timezones": lambda: pd.DataFrame(
        {"b": [b"x", b"y"], "t": pd.date_range("2020", periods=2, tz="UTC")}
    ),
    "unsupported_timedelta": lambda: pd.DataFrame({"t": pd.to_timedelta([1, 2], unit="s")}),
    "duplicate_labels": lambda: pd.DataFrame([[1, "a"]], columns=["x", "x"]),
    "empty_rows": lambda: pd.DataFrame(
        {"a": pd.Series([], dtype="float64"), "o": pd.Series([], dtype=object)}
    ),
    "no_columns": lambda: pd.DataFrame(),
}

ARRAYS: dict[str, Callable[[], dict[str, Any]]] = {
    "features_only": lambda: {"features": _RNG.normal(size=(5, 3))},
    "features_and_targets": lambda: {
        "features": _RNG.normal(size=(5, 3, 2)),
        "targets": _RNG.integers(0, 2, 5),
    },
    "dict_features": lambda: {
        "features": {"b": _RNG.normal(size=(4, 2, 2)), "a": np.arange(4, dtype="int32")},
        "targets": {"y": np.arange(4.0)},
    },
    "big": lambda: {"features": _RNG.normal(size=(_BIG, 2)), "targets": _RNG.integers(0, 3, _BIG)},
    "strings": lambda: {"features": np.array(["a", "bb", "ccc"]), "targets": np.array([b"x", b"y", b"z"])},
    "objects": lambda: {"features": np.array([1, "a", None], dtype=object)},
    "bools_and_dates": lambda: {
        "features": np.array([True, False]),
        "targets": np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[ns]"),
    },
    "zero_dim": lambda: {"features": np.array(5.0)},
    "named_with_digest": lambda: {"features": np.ones((2, 2)), "name": "train", "digest": "d1g3st"},
}

SOURCES: list[Any] = [
    "/tmp/data/iris.csv",
    "relative/iris.parquet",
    Path("/tmp/data/iris.csv"),
    "file:///tmp/data/iris.csv",
    "file://localhost/tmp/iris.csv",
    "s3://bucket/path/iris.csv",
    "gs://bucket/iris.csv",
    "wasbs://container@account.blob.core.windows.net/iris.csv",
    "abfss://fs@account.dfs.core.windows.net/iris.csv",
    "hdfs://namenode:8020/iris.csv",
    "ftp://host/iris.csv",
    "https://example.com/data/iris.csv",
    "http://example.com/iris",
]

UNRESOLVABLE: list[Any] = ["foo://bucket/x", "runs:/abc/data", "dbfs:/x", "file://remotehost/x.csv", 5]


def _entity_fields(entity: Any) -> tuple[Any, ...]:
    return (entity.name, entity.digest, entity.source_type, entity.source, entity.schema, entity.profile)


def _assert_same(ours: flowml.data.Dataset, theirs: Any) -> None:
    assert ours.to_dict() == theirs.to_dict()
    assert ours.to_json() == theirs.to_json()
    entity = ours._to_mlflow_entity()
    assert isinstance(entity, DatasetEntity)
    assert _entity_fields(entity) == _entity_fields(theirs._to_mlflow_entity())


@pytest.fixture(autouse=True)
def _no_username_override(monkeypatch: pytest.MonkeyPatch) -> None:
    # FLOWML_TRACKING_USERNAME is flowml's own alias; MLflow only reads MLFLOW_TRACKING_USERNAME.
    monkeypatch.delenv("FLOWML_TRACKING_USERNAME", raising=False)


# -- pandas --------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", FRAMES)
@pytest.mark.parametrize("source", ["/tmp/data/frame.csv", None], ids=["local", "code"])
def test_from_pandas_matches_mlflow(case: str, source: str | None) -> None:
    df = FRAMES[case]()
    _assert_same(
        flowml.data.from_pandas(df, source=source),
        mlflow.data.from_pandas(df, source=source),
    )


def test_pandas_cases_cover_schema_outcomes() -> None:
    """The frames above exercise real schemas, missing-value flags, and MLflow's 'no schema' cases."""
    schemas = {
        case: flowml.data.from_pandas(make(), source="x.csv").to_dict()["schema"]
        for case, make in FRAMES.items()
    }
    assert schemas["mixed_object"] is None
    assert schemas["unsupported_timedelta"] is None
    assert '"required": false' in str(schemas["missing_values"])
    assert '"type": "object"' in str(schemas["lists_and_dicts"])


def test_from_pandas_with_targets_predictions_name_and_digest() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": [0, 1, 0], "pred": [0, 1, 1]})
    kwargs: dict[str, Any] = {"targets": "label", "predictions": "pred", "name": "eval"}
    ours = flowml.data.from_pandas(df, source="s3://b/eval.csv", **kwargs)
    _assert_same(ours, mlflow.data.from_pandas(df, source="s3://b/eval.csv", **kwargs))
    assert (ours.targets, ours.predictions, ours.name) == ("label", "pred", "eval")
    assert ours.df is df
    pinned = flowml.data.from_pandas(df, source="s3://b/eval.csv", digest="abc123")
    _assert_same(pinned, mlflow.data.from_pandas(df, source="s3://b/eval.csv", digest="abc123"))
    assert pinned.digest == "abc123"


@pytest.mark.parametrize("role", ["targets", "predictions"])
def test_missing_targets_or_predictions_column_is_refused_like_mlflow(role: str) -> None:
    df = pd.DataFrame({"x": [1]})
    with pytest.raises(MlflowException) as theirs:
        mlflow.data.from_pandas(df, source="x.csv", **{role: "nope"})
    with pytest.raises(InvalidParameterValue) as ours:
        flowml.data.from_pandas(df, source="x.csv", **{role: "nope"})
    assert ours.value.message == theirs.value.message
    assert ours.value.error_code == theirs.value.error_code


def test_pandas_digest_reads_only_the_first_10000_rows_but_counts_all() -> None:
    df = pd.DataFrame({"x": np.arange(12_000, dtype="float64")})
    base = flowml.data.from_pandas(df, source="x.csv").digest
    late = df.copy()
    late.loc[11_000, "x"] = -1.0
    early = df.copy()
    early.loc[5, "x"] = -1.0
    assert flowml.data.from_pandas(late, source="x.csv").digest == base
    assert flowml.data.from_pandas(early, source="x.csv").digest != base
    assert flowml.data.from_pandas(df.head(11_999), source="x.csv").digest != base


def test_pandas_schema_and_profile_properties() -> None:
    df = pd.DataFrame({"a": [1, 2], "s": ["x", None]})
    ds = flowml.data.from_pandas(df, source="x.csv")
    assert isinstance(ds.schema, Schema)
    assert ds.schema.input_names() == ["a", "s"]
    assert [spec.to_dict() for spec in ds.schema.inputs] == mlflow.data.from_pandas(
        df, source="x.csv"
    ).schema.to_dict()
    assert ds.profile == {"num_rows": 2, "num_elements": 4}


def test_building_datasets_emits_no_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for make_frame in FRAMES.values():
            flowml.data.from_pandas(make_frame(), source="/tmp/x.csv").to_dict()
        for make_arrays in ARRAYS.values():
            kwargs = make_arrays()
            features = kwargs["features"]
            if not (isinstance(features, np.ndarray) and features.ndim == 0):  # logs "no schema" by design
                flowml.data.from_numpy(source="/tmp/x.npy", **kwargs).to_dict()


# -- numpy ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ARRAYS)
@pytest.mark.parametrize("source", ["s3://bucket/arrays.npz", None], ids=["s3", "code"])
def test_from_numpy_matches_mlflow(case: str, source: str | None) -> None:
    kwargs = ARRAYS[case]()
    _assert_same(
        flowml.data.from_numpy(source=source, **kwargs), mlflow.data.from_numpy(source=source, **kwargs)
    )


def test_numpy_properties() -> None:
    features = {"a": np.ones((3, 2)), "b": np.zeros(3)}
    targets = np.arange(3)
    ds = flowml.data.from_numpy(features, source="x.npz", targets=targets)
    assert ds.features is features
    assert ds.targets is targets
    assert ds.name == "dataset"
    assert ds.schema is not None
    theirs = mlflow.data.from_numpy(features, source="x.npz", targets=targets)
    assert ds.schema.to_dict() == theirs.schema.to_dict()
    assert ds.profile == theirs.profile


def test_numpy_digest_reads_only_the_first_10000_elements() -> None:
    features = np.arange(20_000, dtype="float64")
    base = flowml.data.from_numpy(features, source="x.npy").digest
    late, early = features.copy(), features.copy()
    late[15_000] = -1
    early[3] = -1
    assert flowml.data.from_numpy(late, source="x.npy").digest == base
    assert flowml.data.from_numpy(early, source="x.npy").digest != base


def test_empty_dict_features_cannot_be_digested_like_mlflow() -> None:
    with pytest.raises(MlflowException) as theirs:
        mlflow.data.from_numpy({}, source="x.npy")
    with pytest.raises(InvalidParameterValue) as ours:
        flowml.data.from_numpy({}, source="x.npy")
    assert ours.value.message == theirs.value.message


# -- sources -------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", SOURCES, ids=str)
def test_each_source_kind_matches_mlflow(source: Any) -> None:
    df = pd.DataFrame({"a": [1.0]})
    ours = flowml.data.from_pandas(df, source=source)
    theirs = mlflow.data.from_pandas(df, source=source)
    _assert_same(ours, theirs)
    assert type(ours.source).__name__ == type(theirs.source).__name__


def test_viewfs_and_hdfs_keep_their_own_source_types() -> None:
    for uri in ("viewfs://cluster/x.csv", "hdfs://nn/x.csv"):
        arr = np.ones(2)
        _assert_same(flowml.data.from_numpy(arr, source=uri), mlflow.data.from_numpy(arr, source=uri))


def test_code_source_holds_mlflows_run_context_tags() -> None:
    ours = flowml.data.from_pandas(pd.DataFrame({"a": [1]})).source
    assert isinstance(ours, flowml.data.CodeDatasetSource)
    from mlflow.tracking.context import registry

    assert ours.to_dict() == {"tags": registry.resolve_tags()}
    assert set(ours.to_dict()["tags"]) >= {"mlflow.user", "mlflow.source.name", "mlflow.source.type"}


def test_code_source_follows_username_and_run_context_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_RUN_CONTEXT", '{"team": "vision", "mlflow.source.type": "JOB"}')
    df = pd.DataFrame({"a": [1]})
    ours = flowml.data.from_pandas(df)
    _assert_same(ours, mlflow.data.from_pandas(df))
    tags = ours.source.to_dict()["tags"]
    assert (tags["mlflow.user"], tags["team"], tags["mlflow.source.type"]) == ("alice", "vision", "JOB")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_tags_match_mlflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking.context.git_context import _resolve_git_info

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "a@b.c")
    git("config", "user.name", "a")
    (tmp_path / ".gitignore").write_text("ignored/\n")
    for sub in ("src", "ignored"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "train.py").write_text("")
    git("add", ".gitignore", "src")
    git("commit", "-qm", "init")
    git("remote", "add", "zeta", "https://user:token@example.com/z.git")
    git("remote", "add", "alpha", "git@example.com:a/b.git")

    def both(main_file: str) -> tuple[dict[str, str], dict[str, str]]:
        monkeypatch.setattr(sys, "argv", [main_file])
        theirs = {k: v for k, v in _resolve_git_info().items() if v is not None}
        if "mlflow.source.git.commit" not in theirs:
            theirs = {}  # MLflow's git context is off without a commit
        _git_tags.cache_clear()
        return dict(_git_tags(main_file)), theirs

    ours, theirs = both(str(tmp_path / "src" / "train.py"))
    assert ours == theirs
    assert ours["mlflow.source.git.repoURL"] == "https://example.com/z.git"
    assert ours["mlflow.source.git.branch"] == "main"
    assert both(str(tmp_path / "ignored" / "train.py")) == ({}, {})
    git("checkout", "-q", "--detach")
    ours, theirs = both(str(tmp_path / "src" / "train.py"))
    assert ours == theirs
    assert "mlflow.source.git.branch" not in ours


@pytest.mark.parametrize("source", UNRESOLVABLE, ids=str)
def test_unresolvable_source_errors_like_mlflow(source: Any) -> None:
    df = pd.DataFrame({"a": [1]})
    with pytest.raises(MlflowException) as theirs:
        mlflow.data.from_pandas(df, source=source)
    with pytest.raises(ResourceDoesNotExist) as ours:
        flowml.data.from_pandas(df, source=source)
    assert ours.value.message == theirs.value.message
    assert ours.value.error_code == theirs.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "Could not find a source information resolver" in str(ours.value)


def test_explicit_source_object_is_used_as_is() -> None:
    src = flowml.data.HTTPDatasetSource("https://example.com/x.csv")
    assert flowml.data.from_numpy(np.ones(2), source=src).source is src


@pytest.mark.parametrize("source", [*SOURCES, None], ids=str)
def test_source_round_trips_through_the_logged_entity(source: Any) -> None:
    ds = flowml.data.from_pandas(pd.DataFrame({"a": [1.0]}), source=source)
    entity = ds._to_mlflow_entity()
    for parsed in (
        flowml.data.get_source(entity),
        flowml.data.get_source(DatasetInput(entity)),
        type(ds.source).from_json(ds.source.to_json()),
    ):
        assert type(parsed) is type(ds.source)
        assert parsed.to_dict() == ds.source.to_dict()
    assert flowml.data.get_source(ds) is ds.source
    theirs = mlflow.data.get_source(mlflow.data.from_pandas(pd.DataFrame({"a": [1.0]}), source=source))
    assert type(theirs).__name__ == type(ds.source).__name__


def test_get_source_refuses_unknown_types() -> None:
    with pytest.raises(InvalidParameterValue, match="Unrecognized dataset type"):
        flowml.data.get_source("not a dataset")  # type: ignore[arg-type]
    with pytest.raises(ResourceDoesNotExist, match="unrecognized source type: delta_table"):
        flowml.data.get_source(DatasetEntity("d", "abc", "delta_table", "{}"))


def test_local_source_loads_a_path_or_a_copy(tmp_path: Path) -> None:
    data = tmp_path / "in" / "iris.csv"
    data.parent.mkdir()
    data.write_text("a,b\n1,2\n")
    src = flowml.data.from_pandas(pd.DataFrame({"a": [1]}), source=f"file://{data}").source
    assert isinstance(src, flowml.data.LocalArtifactDatasetSource)
    assert src.load() == str(data)
    copied = src.load(str(tmp_path / "out"))
    assert Path(copied).read_text() == "a,b\n1,2\n"
    assert Path(copied).parent == tmp_path / "out"
    with pytest.raises(ResourceDoesNotExist):
        flowml.data.LocalArtifactDatasetSource(str(tmp_path / "missing.csv")).load()


@pytest.fixture
def http_file_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"x,y\n1,2\n"
            self.send_response(200)
            if self.path.startswith("/named"):
                self.send_header("Content-Disposition", 'attachment; filename="served.csv"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_source_downloads(http_file_server: str, tmp_path: Path) -> None:
    plain = flowml.data.HTTPDatasetSource(f"{http_file_server}/files/data.csv").load(str(tmp_path))
    assert plain == os.path.join(tmp_path, "data.csv")
    assert Path(plain).read_text() == "x,y\n1,2\n"
    named = flowml.data.HTTPDatasetSource(f"{http_file_server}/named/whatever").load(str(tmp_path))
    assert named == os.path.join(tmp_path, "served.csv")


# -- import cost ---------------------------------------------------------------------------------
def test_importing_flowml_data_imports_neither_pandas_nor_numpy() -> None:
    code = (
        "import sys, flowml.data\n"
        "heavy = sorted(m for m in ('pandas', 'numpy', 'mlflow') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_public_face() -> None:
    assert sorted(flowml.data.__all__) == sorted(
        [
            "CodeDatasetSource",
            "Dataset",
            "DatasetSource",
            "FileSystemDatasetSource",
            "HTTPDatasetSource",
            "LocalArtifactDatasetSource",
            "NumpyDataset",
            "PandasDataset",
            "S3ArtifactDatasetSource",
            "TensorDatasetSchema",
            "from_numpy",
            "from_pandas",
            "get_source",
            "sources",
        ]
    )
    assert all(hasattr(flowml.data, name) for name in flowml.data.__all__)
    # Same class names as MLflow's string-resolvable sources (MLflow reuses the Hdfs name for viewfs).
    assert set(flowml.data.sources.__all__) - {"ViewfsArtifactDatasetSource"} <= set(
        mlflow.data.sources.__all__
    )
