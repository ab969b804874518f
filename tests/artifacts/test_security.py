"""Path traversal (security notes §1.3 A1/A6/A18, test design T1) on every operation and backend.

Each malicious path must raise InvalidParameterValue, and the canary files / sibling prefixes
around the root must be byte-identical afterwards: nothing read, created or deleted outside.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import unicodedata
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowml.artifacts import ArtifactRepository, LocalArtifactRepository, normalize_artifact_path
from flowml.exceptions import InvalidParameterValue
from tests.artifacts.conftest import CANARY, Backend

MALICIOUS = [
    "..",
    ".",
    "../canary.txt",
    "../../canary.txt",
    "a/../../canary.txt",
    "a/b/../../../canary.txt",
    "../root-sibling/canary.txt",
    "../prefix-sibling/canary.txt",
    "./a",
    "a/./b",
    "a//b",
    "..%2fcanary.txt",
    "%2e%2e%2fcanary.txt",
    "%2E%2E/canary.txt",
    "%252e%252e%252fcanary.txt",
    "%25252e%25252e%25252fcanary.txt",
    "a/%2e%2e/%2e%2e/canary.txt",
    "..%5ccanary.txt",
    "..%255c..%255ccanary.txt",
    "..\\canary.txt",
    "a\\..\\..\\canary.txt",
    "\\\\server\\share\\x",
    "/tmp/flowml-canary",
    "/etc/passwd",
    "//etc/passwd",
    "%2fetc%2fpasswd",
    "%252fetc%252fpasswd",
    "C:\\x",
    "C:/x",
    "c:x",
    "file:///tmp/flowml-canary",
    "a/#/../../x",
    "a/?/../../x",
    "a/;/../../x",
    "a/%00",
    "a\x00b",
    "x.txt\x00.png",
    "%2500",
    "a\nb",
    "\uff0e\uff0e/canary.txt",  # fullwidth dots: NFKC ".."
    "\uff0e\uff0e\uff0fcanary.txt",  # fullwidth dots + fullwidth solidus
    "a\uff3c..\uff3c..",  # fullwidth backslash
    "\u2024\u2024/canary.txt",  # one-dot leaders
    ".flowml-tmp-0123",  # reserved temp-file names
    "d/.flowml-tmp-x",
    "x" * 2000,
]

SAFE = [
    "a",
    "a/b.txt",
    "dir/",
    "my model/v1.0/model.pkl",
    "a#b",
    "a?b",
    "a;b",
    "caf\u00e9.txt",
    "~x",
    "a%20b",
]


def _operations(tmp_src: Path, dst: Path) -> dict[str, Callable[[ArtifactRepository, str], Any]]:
    src_file = tmp_src / "file.txt"
    src_dir = tmp_src / "dir"
    return {
        "log_artifact": lambda repo, p: repo.log_artifact(src_file, p),
        "log_artifacts": lambda repo, p: repo.log_artifacts(src_dir, p),
        "log_bytes": lambda repo, p: repo.log_bytes(b"evil", p),
        "write_stream": lambda repo, p: repo.write_stream(p, iter([b"evil"])),
        "list_artifacts": lambda repo, p: repo.list_artifacts(p),
        "download_artifacts": lambda repo, p: repo.download_artifacts(p, dst),
        "open_stream": lambda repo, p: b"".join(repo.open_stream(p)),
        "delete_artifacts": lambda repo, p: repo.delete_artifacts(p),
    }


@pytest.mark.parametrize("operation", list(_operations(Path(), Path())))
def test_malicious_paths_rejected_and_nothing_outside_touched(
    backend: Backend, operation: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("work")
    (work / "dir" / "sub").mkdir(parents=True)
    (work / "file.txt").write_bytes(b"evil")
    (work / "dir" / "sub" / "f.txt").write_bytes(b"evil")
    dst = work / "dst"
    op = _operations(work, dst)[operation]
    backend.repo.log_bytes(b"keep", "keep/me.txt")
    before = backend.snapshot_outside()

    accepted = []
    for path in MALICIOUS:
        try:
            result = op(backend.repo, path)
        except InvalidParameterValue:
            continue
        accepted.append((path, result))
    assert accepted == []

    assert backend.snapshot_outside() == before
    assert backend.read_outside("canary.txt") == CANARY
    assert not dst.exists()
    assert [f.path for f in backend.repo.list_artifacts()] == ["keep"]
    assert b"".join(backend.repo.open_stream("keep/me.txt")) == b"keep"


@pytest.mark.parametrize("path", MALICIOUS)
def test_normalize_rejects(path: str) -> None:
    with pytest.raises(InvalidParameterValue):
        normalize_artifact_path(path)


@pytest.mark.parametrize("path", SAFE)
def test_normalize_accepts_ordinary_names(path: str) -> None:
    assert normalize_artifact_path(path) == path.rstrip("/")


def test_root_is_allowed_only_where_meaningful(backend: Backend) -> None:
    assert normalize_artifact_path(None) == ""
    with pytest.raises(InvalidParameterValue):
        backend.repo.log_bytes(b"x", "")
    with pytest.raises(InvalidParameterValue):
        backend.repo.write_stream("/", iter([b"x"]))
    with pytest.raises(InvalidParameterValue):
        backend.repo.open_stream("")


def test_log_artifacts_with_unsafe_local_name_writes_nothing(backend: Backend, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "ok").mkdir(parents=True)
    (src / "ok" / "fine.txt").write_bytes(b"fine")
    (src / "a\\..\\..\\escape.txt").write_bytes(b"evil")
    before = backend.snapshot_outside()
    with pytest.raises(InvalidParameterValue):
        backend.repo.log_artifacts(src, "d")
    assert backend.repo.list_artifacts() == []
    assert backend.snapshot_outside() == before


# ---- local symlinks ------------------------------------------------------------------------------


@pytest.fixture
def linked(local_backend: Backend, tmp_path: Path) -> Backend:
    """Root with a file symlink and a dir symlink pointing outside, plus an inside symlink."""
    root = tmp_path / "root"
    (root / "link_file").symlink_to(tmp_path / "canary.txt")
    (root / "link_dir").symlink_to(tmp_path / "root-sibling", target_is_directory=True)
    (root / "real.txt").write_bytes(b"inside")
    (root / "alias.txt").symlink_to(root / "real.txt")
    return local_backend


@pytest.mark.parametrize(
    ("operation", "path"),
    [
        ("open_stream", "link_file"),
        ("open_stream", "link_dir/canary.txt"),
        ("download_artifacts", "link_file"),
        ("download_artifacts", "link_dir"),
        ("download_artifacts", ""),  # the root contains symlinks leaving it
        ("list_artifacts", "link_dir"),
        ("log_bytes", "link_file"),
        ("log_bytes", "link_dir/new.txt"),
        ("log_bytes", "link_dir/deeper/new.txt"),
        ("write_stream", "link_dir/canary.txt"),
        ("log_artifact", "link_dir"),
        ("log_artifacts", "link_dir"),
        ("delete_artifacts", "link_file"),
        ("delete_artifacts", "link_dir"),
        ("delete_artifacts", "link_dir/canary.txt"),
    ],
)
def test_symlinks_leaving_the_root_are_rejected(
    linked: Backend, operation: str, path: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("work")
    (work / "dir").mkdir()
    (work / "file.txt").write_bytes(b"evil")
    (work / "dir" / "f.txt").write_bytes(b"evil")
    dst = work / "dst"
    before = linked.snapshot_outside()
    with pytest.raises(InvalidParameterValue):
        _operations(work, dst)[operation](linked.repo, path)
    assert linked.snapshot_outside() == before
    assert linked.read_outside("canary.txt") == CANARY
    assert linked.read_outside("root-sibling/canary.txt") == CANARY
    assert not dst.exists()


def test_listing_hides_outside_symlinks_and_inside_ones_work(linked: Backend) -> None:
    assert [(f.path, f.file_size) for f in linked.repo.list_artifacts()] == [
        ("alias.txt", 6),
        ("real.txt", 6),
    ]
    assert b"".join(linked.repo.open_stream("alias.txt")) == b"inside"


def test_deleting_the_root_unlinks_symlinks_without_following(linked: Backend, tmp_path: Path) -> None:
    before = linked.snapshot_outside()
    linked.repo.delete_artifacts()
    assert not (tmp_path / "root").exists()
    assert linked.snapshot_outside() == before


def test_download_refuses_symlink_in_destination(local_backend: Backend, tmp_path_factory: Any) -> None:
    local_backend.repo.log_bytes(b"payload", "x/y.txt")
    outside = tmp_path_factory.mktemp("outside")
    dst = tmp_path_factory.mktemp("dst")
    (dst / "x").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidParameterValue):
        local_backend.repo.download_artifacts("x/y.txt", dst)
    assert list(outside.iterdir()) == []


# ---- keys in the bucket that flowml would never write (A6) ---------------------------------------


@pytest.mark.s3
def test_unsafe_keys_in_bucket_are_never_listed_or_downloaded(
    s3_backend: Backend, s3_client: Any, tmp_path: Path
) -> None:
    bucket = s3_backend.repo.root_uri.split("/")[2]
    s3_backend.repo.log_bytes(b"good", "d/good.txt")
    for key in ("prefix/d/../../../escape.txt", "prefix/d//double.txt", "prefix/d/back\\slash.txt"):
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"evil")
    s3_client.put_object(Bucket=bucket, Key="prefix/d/marker/", Body=b"")  # console "folder"

    listed = [f.path for f in s3_backend.repo.list_artifacts("d")]
    assert "d/good.txt" in listed
    assert all(normalize_artifact_path(p) == p for p in listed)
    dst = tmp_path / "dst"
    with pytest.raises(InvalidParameterValue):
        s3_backend.repo.download_artifacts("d", dst)
    assert not dst.exists()
    assert not (tmp_path / "escape.txt").exists()


# ---- property-based (T1) -------------------------------------------------------------------------

_TOKENS = st.sampled_from(
    [
        "..",
        ".",
        "%2e",
        "%252e",
        "%2f",
        "%252f",
        "%5c",
        "\\",
        "/",
        "#",
        "?",
        ";",
        "%00",
        "\x00",
        "file:",
        "dbfs:",
        "//host",
        "\uff0e",
        "\u2024",
        "\uff0f",
        "a",
        "b",
        "C:",
        "~",
        " ",
        "%",
        "25",
    ]
)


def _layers(path: str) -> list[str]:
    out = [path]
    while (decoded := urllib.parse.unquote(out[-1])) != out[-1]:
        out.append(decoded)
    return out + [unicodedata.normalize("NFKC", layer) for layer in out]


@settings(max_examples=2000, deadline=None, database=None)
@given(st.lists(_TOKENS, max_size=12).map("".join))
def test_property_accepted_paths_stay_inside_under_every_decoding(path: str) -> None:
    try:
        rel = normalize_artifact_path(path)
    except InvalidParameterValue:
        return
    for layer in _layers(rel):
        assert "\\" not in layer
        assert "\x00" not in layer
        assert not layer.startswith("/")
        joined = posixpath.normpath(posixpath.join("/root", layer))
        assert joined == "/root" or joined.startswith("/root/")
        assert ".." not in layer.split("/")


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TOKENS, min_size=1, max_size=8).map("".join))
def test_property_local_writes_stay_inside_root(path: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "canary.txt").write_bytes(CANARY)
        root = base / "root"
        repo = LocalArtifactRepository(str(root))
        try:
            record = repo.write_stream(path, iter([b"x"]))
        except InvalidParameterValue:
            assert not root.exists() or not any(root.rglob("*"))
        else:
            written = root / record.path
            assert written.is_file()
            assert os.path.realpath(written).startswith(os.path.realpath(root) + os.sep)
        assert sorted(p.name for p in base.iterdir()) == sorted(
            ["canary.txt"] + (["root"] if root.exists() else [])
        )
        assert (base / "canary.txt").read_bytes() == CANARY
