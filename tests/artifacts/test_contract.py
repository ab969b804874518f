"""Behaviour every artifact backend shares; each test runs on a local directory and on S3."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from flowml.artifacts import ArtifactRecord
from flowml.entities import FileInfo
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist
from tests.artifacts.conftest import Backend


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _make_tree(base: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha\n",
        "empty.bin": b"",
        "bytes.bin": bytes(range(256)) * 17,
        "sub/b.json": b'{"x": 1}',
        "sub/deeper/c.bin": os.urandom(70_000),
        "sub/deeper/\u00fcnicode name.txt": "h\u00e9llo".encode(),
        "z/last.txt": b"z",
    }
    for rel, data in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def _read_tree(base: Path) -> dict[str, bytes]:
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def test_log_artifact_round_trip_with_and_without_artifact_path(backend: Backend, tmp_path: Path) -> None:
    src = tmp_path / "src" / "model.pkl"
    src.parent.mkdir()
    data = os.urandom(3 * 1024 * 1024 + 7)
    src.write_bytes(data)

    assert backend.repo.log_artifact(src) == [ArtifactRecord("model.pkl", len(data), _sha(data))]
    assert backend.repo.log_artifact(str(src), "models") == [
        ArtifactRecord("models/model.pkl", len(data), _sha(data))
    ]
    assert backend.repo.log_artifact(src, "a/b/") == [ArtifactRecord("a/b/model.pkl", len(data), _sha(data))]

    for rel in ("model.pkl", "models/model.pkl", "a/b/model.pkl"):
        assert b"".join(backend.repo.open_stream(rel)) == data
        local = Path(backend.repo.download_artifacts(rel, tmp_path / f"dl-{rel.replace('/', '_')}"))
        assert local == tmp_path / f"dl-{rel.replace('/', '_')}" / rel
        assert local.read_bytes() == data


def test_log_artifacts_nested_tree_round_trip(backend: Backend, tmp_path: Path) -> None:
    files = _make_tree(tmp_path / "src")
    records = backend.repo.log_artifacts(tmp_path / "src", "d")
    assert records == sorted(records, key=lambda r: r.path)
    assert {r.path: (r.file_size, r.sha256) for r in records} == {
        f"d/{rel}": (len(data), _sha(data)) for rel, data in files.items()
    }

    out = Path(backend.repo.download_artifacts("d", tmp_path / "out"))
    assert out == tmp_path / "out" / "d"
    assert _read_tree(out) == files

    whole = Path(backend.repo.download_artifacts("", tmp_path / "whole"))
    assert whole == tmp_path / "whole"
    assert _read_tree(whole) == {f"d/{rel}": data for rel, data in files.items()}

    sub = Path(backend.repo.download_artifacts("d/sub/deeper/", tmp_path / "sub"))
    assert _read_tree(sub) == {
        k.removeprefix("sub/deeper/"): v for k, v in files.items() if k.startswith("sub/deeper/")
    }


def test_log_artifacts_without_artifact_path_lands_at_root(backend: Backend, tmp_path: Path) -> None:
    files = _make_tree(tmp_path / "src")
    backend.repo.log_artifacts(tmp_path / "src")
    assert _read_tree(Path(backend.repo.download_artifacts("", tmp_path / "out"))) == files


def test_download_to_default_temp_dir(backend: Backend) -> None:
    backend.repo.log_bytes(b"payload", "x/y.txt")
    local = Path(backend.repo.download_artifacts("x/y.txt"))
    assert local.read_bytes() == b"payload"
    assert local.parts[-2:] == ("x", "y.txt")


def test_list_artifacts_one_level_sorted_relative_to_root(backend: Backend, tmp_path: Path) -> None:
    _make_tree(tmp_path / "src")
    backend.repo.log_artifacts(tmp_path / "src", "d")
    backend.repo.log_bytes(b"12345", "top.txt")

    assert backend.repo.list_artifacts() == [
        FileInfo("d", True, None),
        FileInfo("top.txt", False, 5),
    ]
    assert backend.repo.list_artifacts("d") == [
        FileInfo("d/a.txt", False, 6),
        FileInfo("d/bytes.bin", False, 256 * 17),
        FileInfo("d/empty.bin", False, 0),
        FileInfo("d/sub", True, None),
        FileInfo("d/z", True, None),
    ]
    assert backend.repo.list_artifacts("d/sub/") == [
        FileInfo("d/sub/b.json", False, 8),
        FileInfo("d/sub/deeper", True, None),
    ]
    assert backend.repo.list_artifacts("missing") == []
    assert backend.repo.list_artifacts("top.txt") == []


def test_log_bytes_and_write_stream(backend: Backend) -> None:
    rec = backend.repo.log_bytes(b"{}", "dicts/d.json")
    assert rec == ArtifactRecord("dicts/d.json", 2, _sha(b"{}"))
    assert backend.repo.log_bytes(b"", "empty") == ArtifactRecord("empty", 0, _sha(b""))

    chunks = [os.urandom(n) for n in (1, 0, 4096, 1_000_003, 17)]
    rec = backend.repo.write_stream("streams/s.bin", iter(chunks))
    joined = b"".join(chunks)
    assert rec == ArtifactRecord("streams/s.bin", len(joined), _sha(joined))
    assert b"".join(backend.repo.open_stream("streams/s.bin")) == joined
    assert b"".join(backend.repo.open_stream("empty")) == b""


def test_overwrite_replaces_content(backend: Backend) -> None:
    backend.repo.log_bytes(b"old content", "f.txt")
    backend.repo.log_bytes(b"new", "f.txt")
    assert b"".join(backend.repo.open_stream("f.txt")) == b"new"
    assert backend.repo.list_artifacts() == [FileInfo("f.txt", False, 3)]


def test_missing_artifacts_raise_resource_does_not_exist(backend: Backend, tmp_path: Path) -> None:
    backend.repo.log_bytes(b"x", "present/file.txt")
    with pytest.raises(ResourceDoesNotExist):
        backend.repo.open_stream("nope.txt")
    with pytest.raises(ResourceDoesNotExist):
        backend.repo.open_stream("present/nope.txt")
    with pytest.raises(ResourceDoesNotExist):
        backend.repo.download_artifacts("nope", tmp_path / "dl")
    with pytest.raises(ResourceDoesNotExist):
        backend.repo.log_artifact(tmp_path / "no-such-file.txt")
    with pytest.raises(ResourceDoesNotExist):
        backend.repo.log_artifacts(tmp_path / "no-such-dir")
    assert not (tmp_path / "dl").exists()


def test_log_artifact_rejects_a_directory(backend: Backend, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterValue):
        backend.repo.log_artifact(tmp_path)


def test_delete_file_subtree_and_root_keeps_prefix_neighbours(backend: Backend, tmp_path: Path) -> None:
    before = backend.snapshot_outside()
    backend.repo.log_bytes(b"1", "a")
    backend.repo.log_bytes(b"2", "ab")  # shares the prefix "a" but is not under "a/"
    backend.repo.log_bytes(b"3", "d/x.txt")
    backend.repo.log_bytes(b"4", "d/sub/y.txt")
    backend.repo.log_bytes(b"5", "dd/z.txt")

    backend.repo.delete_artifacts("a")
    assert [f.path for f in backend.repo.list_artifacts()] == ["ab", "d", "dd"]
    backend.repo.delete_artifacts("d")
    assert [f.path for f in backend.repo.list_artifacts()] == ["ab", "dd"]
    backend.repo.delete_artifacts("does/not/exist")  # missing: a no-op, like MLflow
    backend.repo.delete_artifacts()
    assert backend.repo.list_artifacts() == []
    with pytest.raises(ResourceDoesNotExist):
        backend.repo.open_stream("dd/z.txt")
    assert backend.snapshot_outside() == before


def test_open_stream_is_lazy_and_chunked(backend: Backend) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    backend.repo.log_bytes(data, "big.bin")
    stream = backend.make_repo(chunk_size=64 * 1024).open_stream("big.bin")
    first = next(stream)
    assert 0 < len(first) <= 64 * 1024
    assert first + b"".join(stream) == data


def test_constructor_does_no_io(tmp_path: Path) -> None:
    from flowml.artifacts import LocalArtifactRepository, S3ArtifactRepository

    LocalArtifactRepository(str(tmp_path / "never" / "created"))
    assert not (tmp_path / "never").exists()
    repo = S3ArtifactRepository("s3://bucket-x/p", endpoint_url="http://127.0.0.1:9")  # nothing listens
    assert repo._client_instance is None
