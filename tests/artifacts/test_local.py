"""Local backend specifics: atomic + durable writes (security notes §3.4), streaming, odd files."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowml.artifacts import LocalArtifactRepository
from flowml.artifacts.base import TEMP_PREFIX
from flowml.entities import FileInfo
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist

MiB = 1024 * 1024


class SourceFailedError(RuntimeError):
    pass


def _failing_stream(good_chunks: int) -> Iterator[bytes]:
    for _ in range(good_chunks):
        yield b"n" * MiB
    raise SourceFailedError("source failed mid-stream")


def _all_names(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_failed_write_leaves_old_file_intact_and_no_temp_files(tmp_path: Path) -> None:
    repo = LocalArtifactRepository(str(tmp_path / "root"))
    repo.log_bytes(b"old", "d/f.bin")
    with pytest.raises(SourceFailedError):
        repo.write_stream("d/f.bin", _failing_stream(3))
    with pytest.raises(SourceFailedError):
        repo.write_stream("d/new.bin", _failing_stream(2))
    assert b"".join(repo.open_stream("d/f.bin")) == b"old"
    assert _all_names(tmp_path / "root") == ["d", "d/f.bin"]
    with pytest.raises(ResourceDoesNotExist):
        repo.open_stream("d/new.bin")


def test_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    repo = LocalArtifactRepository(str(tmp_path / "root"))
    final = tmp_path / "root" / "f.bin"
    seen: list[bool] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            seen.append(final.exists())
            yield b"x" * MiB

    repo.write_stream("f.bin", chunks())
    assert seen == [False] * 4
    assert final.stat().st_size == 4 * MiB


def test_writes_fsync_file_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:  # records what was synced, then really syncs it
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    root = tmp_path / "root"
    LocalArtifactRepository(str(root)).log_bytes(b"data", "a/b/c.txt")
    assert any(os.path.basename(p).startswith(TEMP_PREFIX) for p in synced)  # the file, before rename
    for directory in (root / "a" / "b", root / "a", root):  # the new entries in each parent
        assert str(directory) in synced


def test_large_stream_uses_bounded_memory(tmp_path: Path) -> None:
    repo = LocalArtifactRepository(str(tmp_path / "root"))
    sha = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        block = os.urandom(MiB)
        for _ in range(48):
            sha.update(block)
            yield block

    tracemalloc.start()
    try:
        record = repo.write_stream("big.bin", chunks())
        for _ in repo.open_stream("big.bin"):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert record.file_size == 48 * MiB
    assert record.sha256 == sha.hexdigest()
    assert peak < 8 * MiB


def test_large_file_round_trip_via_log_artifact(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    with open(src, "wb") as fh:
        for _ in range(20):
            fh.write(os.urandom(MiB))
    repo = LocalArtifactRepository(str(tmp_path / "root"))
    [record] = repo.log_artifact(src, "m")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert record.sha256 == digest
    out = Path(repo.download_artifacts("m/big.bin", tmp_path / "out"))
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest


def test_temp_files_are_hidden_from_listing_and_download(tmp_path: Path) -> None:
    root = tmp_path / "root"
    repo = LocalArtifactRepository(str(root))
    repo.log_bytes(b"x", "d/f.txt")
    (root / "d" / f"{TEMP_PREFIX}deadbeef").write_bytes(b"partial")  # a crashed writer's leftover
    assert repo.list_artifacts("d") == [FileInfo("d/f.txt", False, 1)]
    out = Path(repo.download_artifacts("d", tmp_path / "out"))
    assert sorted(p.name for p in out.iterdir()) == ["f.txt"]


def test_file_and_directory_conflicts_are_rejected(tmp_path: Path) -> None:
    repo = LocalArtifactRepository(str(tmp_path / "root"))
    repo.log_bytes(b"x", "d/f.txt")
    with pytest.raises(InvalidParameterValue):
        repo.log_bytes(b"y", "d")  # a directory is there
    with pytest.raises(InvalidParameterValue):
        repo.log_bytes(b"y", "d/f.txt/inner")  # a parent is a file
    with pytest.raises(InvalidParameterValue):
        repo.open_stream("d")
    assert _all_names(tmp_path / "root") == ["d", "d/f.txt"]


def test_fifo_in_root_is_never_opened(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "pipe")
    repo = LocalArtifactRepository(str(root))
    with pytest.raises(ResourceDoesNotExist):
        repo.open_stream("pipe")  # would block forever if opened for reading
    assert repo.list_artifacts() == []
    assert Path(repo.download_artifacts("", tmp_path / "out")).is_dir()


def test_file_uri_root_and_symlinked_root(tmp_path: Path) -> None:
    real = tmp_path / "real-root"
    real.mkdir()
    (tmp_path / "link-root").symlink_to(real, target_is_directory=True)
    via_uri = LocalArtifactRepository((tmp_path / "link-root").as_uri())
    via_uri.log_bytes(b"ok", "a/b.txt")
    assert (real / "a" / "b.txt").read_bytes() == b"ok"
    assert via_uri.list_artifacts("a") == [FileInfo("a/b.txt", False, 2)]


def test_relative_root_is_fixed_at_construction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    repo = LocalArtifactRepository("./flowml-artifacts")
    monkeypatch.chdir("/")
    repo.log_bytes(b"x", "f")
    assert (tmp_path / "flowml-artifacts" / "f").read_bytes() == b"x"
