"""The artifact repository interface, shared path-safety rules and streaming helpers.

Every public method of :class:`ArtifactRepository` validates its artifact path here, *before* a
backend sees it, so a new backend cannot forget the check. A path is accepted only when it stays
inside the repository root under every percent-decoding of it (decoded repeatedly until stable)
and under Unicode NFKC normalisation: no ``..``/``.``/empty segments, no absolute or drive
(``C:``) paths, no backslashes, no NUL or other control characters, no flowml temp-file names.
Backends add their own checks (the local one refuses symlinks that leave the root).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import stat
import tempfile
import unicodedata
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from flowml.entities import FileInfo
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist

__all__ = [
    "CHUNK_SIZE",
    "TEMP_PREFIX",
    "ArtifactRecord",
    "ArtifactRepository",
    "HashingChunks",
    "atomic_write",
    "fsync_dir",
    "is_within",
    "iter_file",
    "join_artifact_path",
    "normalize_artifact_path",
]

logger = logging.getLogger(__name__)

#: Read/write granularity for streamed copies (never a whole file in memory).
CHUNK_SIZE = 1024 * 1024
#: Prefix of in-flight temp files; user paths using it are rejected and listings hide it.
TEMP_PREFIX = ".flowml-tmp-"
#: S3's key limit; also keeps local paths well below PATH_MAX.
MAX_PATH_BYTES = 1024
_MAX_DECODE_ROUNDS = 10
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

Kind = Literal["file", "dir"]


@dataclass(frozen=True)
class ArtifactRecord:
    """What was stored: ``path`` relative to the repository root (posix), size and sha256 (hex)."""

    path: str
    file_size: int
    sha256: str


def _reject(path: str, why: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"Invalid artifact path {path!r}: {why}")


def _check_form(original: str, form: str) -> None:
    if _CONTROL_RE.search(form):
        raise _reject(original, "contains a NUL or control character")
    if "\\" in form:
        raise _reject(original, "contains a backslash")
    if form.startswith("/"):
        raise _reject(original, "absolute paths are not allowed")
    if _DRIVE_RE.match(form):
        raise _reject(original, "drive-letter paths are not allowed")
    stripped = form.rstrip("/")
    if not stripped:
        return
    for segment in stripped.split("/"):
        if segment in ("", ".", ".."):
            raise _reject(original, "'..', '.' and empty segments are not allowed")
        if segment.startswith(TEMP_PREFIX):
            raise _reject(original, f"names starting with {TEMP_PREFIX!r} are reserved")


def normalize_artifact_path(path: str | None, *, allow_root: bool = True) -> str:
    """Validate an artifact path and return it relative to the root, posix, without trailing ``/``.

    ``None`` and ``""`` mean the root itself (rejected when ``allow_root`` is false). Raises
    :class:`InvalidParameterValue` for anything that could leave the root (see module doc).
    """
    if path is None:
        path = ""
    if not isinstance(path, str):
        raise InvalidParameterValue(f"Artifact path must be a string, got {type(path).__name__}")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise _reject(path[:64] + "...", f"longer than {MAX_PATH_BYTES} bytes")
    current = path
    for _ in range(_MAX_DECODE_ROUNDS):
        _check_form(path, current)
        folded = unicodedata.normalize("NFKC", current)
        if folded != current:
            _check_form(path, folded)
        decoded = urllib.parse.unquote(current)
        if decoded == current:
            break
        current = decoded
    else:
        raise _reject(path, "too many layers of percent-encoding")
    result = path.rstrip("/")
    if not result and not allow_root:
        raise _reject(path, "a file path is required, not the artifact root")
    return result


def join_artifact_path(*parts: str | None) -> str:
    """Join already-normalised relative paths, skipping empty ones."""
    return "/".join(p for p in parts if p)


def is_within(root: str, candidate: str) -> bool:
    """True when the *real* path ``candidate`` is ``root`` or below it (both already realpath'd)."""
    try:
        return os.path.commonpath([root, candidate]) == root
    except ValueError:
        return False


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so a rename/create inside it survives a crash (best effort off POSIX)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse directory fsync
        pass
    finally:
        os.close(fd)


class HashingChunks:
    """Iterate byte chunks while counting size and computing sha256 on the way through."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._sha = hashlib.sha256()
        self.size = 0
        self.exhausted = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self.exhausted = True
            raise
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise InvalidParameterValue(f"Artifact chunks must be bytes, got {type(chunk).__name__}")
        data = bytes(chunk)
        self._sha.update(data)
        self.size += len(data)
        return data

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


def iter_file(path: str | os.PathLike[str], chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield a file's bytes in chunks (the file is closed when the generator finishes or is closed)."""
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            yield chunk


def atomic_write(dest: Path, chunks: Iterable[bytes], *, durable: bool = True) -> None:
    """Write ``chunks`` to ``dest`` via a temp file in the same directory and ``os.replace``.

    Readers never see a partial file at ``dest``; on any error the temp file is removed. With
    ``durable`` the file is fsynced before the rename and the directory after it.
    """
    tmp = dest.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(dest.parent)


def _safe_local_target(dst_root: Path, rel: str) -> Path:
    """``dst_root/rel`` after checking that no existing symlink takes it outside ``dst_root``."""
    target = dst_root.joinpath(*rel.split("/")) if rel else dst_root
    if not is_within(os.path.realpath(dst_root), os.path.realpath(target)):
        raise InvalidParameterValue(f"Download target {rel!r} escapes {str(dst_root)!r} via a symlink")
    return target


class ArtifactRepository(ABC):
    """Stores a tree of artifact files under ``root_uri``; every path is relative to that root.

    Public methods validate paths and then call the backend primitives (``_write``, ``_open``,
    ``_kind``, ``_list``, ``_walk_files``, ``_delete``, ``_download_file``), which receive
    already-normalised relative paths (``""`` is the root).
    """

    def __init__(self, root_uri: str) -> None:
        self.root_uri = root_uri

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root_uri!r})"

    # ---- writes -------------------------------------------------------------------------------
    def log_artifact(
        self, local_file: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactRecord]:
        """Store one local file as ``<artifact_path>/<basename>``."""
        prefix = normalize_artifact_path(artifact_path)
        source = Path(local_file)
        if not source.exists():
            raise ResourceDoesNotExist(f"Local file {str(source)!r} does not exist")
        if not source.is_file():
            raise InvalidParameterValue(f"{str(source)!r} is not a regular file")
        rel = normalize_artifact_path(join_artifact_path(prefix, source.name), allow_root=False)
        return [self._store(rel, iter_file(source))]

    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactRecord]:
        """Store every file below ``local_dir`` as ``<artifact_path>/<relative path>``.

        Like MLflow, file symlinks are read through and directory symlinks are not followed.
        All paths are validated before the first byte is written.
        """
        prefix = normalize_artifact_path(artifact_path)
        source = Path(local_dir)
        if not source.is_dir():
            raise ResourceDoesNotExist(f"Local directory {str(source)!r} does not exist")
        plan: list[tuple[Path, str]] = []
        for dirpath, dirnames, filenames in os.walk(source):
            dirnames.sort()
            for name in sorted(filenames):
                file_path = Path(dirpath, name)
                if not stat.S_ISREG(file_path.stat().st_mode):
                    logger.warning("Skipping non-regular file %s", file_path)
                    continue
                rel_local = file_path.relative_to(source).as_posix()
                rel = normalize_artifact_path(join_artifact_path(prefix, rel_local), allow_root=False)
                plan.append((file_path, rel))
        return [self._store(rel, iter_file(file_path)) for file_path, rel in plan]

    def log_bytes(self, data: bytes, artifact_file: str) -> ArtifactRecord:
        """Store ``data`` as ``artifact_file`` (used by log_text / log_dict / log_figure)."""
        rel = normalize_artifact_path(artifact_file, allow_root=False)
        size = len(data)
        return self._store(rel, (data[i : i + CHUNK_SIZE] for i in range(0, max(size, 1), CHUNK_SIZE)))

    def write_stream(self, artifact_path: str, chunks: Iterable[bytes]) -> ArtifactRecord:
        """Store a stream of byte chunks as ``artifact_path`` (for the server's upload proxy)."""
        rel = normalize_artifact_path(artifact_path, allow_root=False)
        return self._store(rel, chunks)

    def _store(self, rel: str, chunks: Iterable[bytes]) -> ArtifactRecord:
        hashing = HashingChunks(chunks)
        self._write(rel, hashing)
        if not hashing.exhausted:  # pragma: no cover - a backend bug, never user input
            raise RuntimeError(f"{type(self).__name__} did not consume the whole stream for {rel!r}")
        logger.debug("Stored %s/%s (%d bytes)", self.root_uri, rel, hashing.size)
        return ArtifactRecord(path=rel, file_size=hashing.size, sha256=hashing.sha256)

    # ---- reads --------------------------------------------------------------------------------
    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """One level below ``path`` (root by default), sorted; paths are relative to the root.

        A missing path or a file lists as ``[]`` (as in MLflow, and as S3 cannot tell apart).
        """
        rel = normalize_artifact_path(path)
        return sorted(self._list(rel), key=lambda info: info.path)

    def walk_files(self, artifact_path: str | None = None) -> tuple[Kind, list[str]]:
        """What ``artifact_path`` is and the root-relative paths of every file in it (sorted).

        A file gives ``("file", [path])``; a directory (the root by default) gives every file below
        it, leaving out (logged) names that are not valid artifact paths, as listings do. Raises
        :class:`ResourceDoesNotExist` when nothing is stored there.
        """
        rel = normalize_artifact_path(artifact_path)
        kind = self._kind(rel)
        if kind is None:
            raise ResourceDoesNotExist(f"Artifact {rel!r} does not exist under {self.root_uri}")
        if kind == "file":
            return kind, [rel]
        files = []
        for file_rel in self._walk_files(rel):
            try:
                files.append(normalize_artifact_path(file_rel, allow_root=False))
            except InvalidParameterValue:
                logger.warning("Leaving out %s/%s: not a valid artifact path", self.root_uri, file_rel)
        return kind, files

    def open_stream(self, artifact_path: str) -> Iterator[bytes]:
        """Open a file artifact for a streamed read; errors are raised here, not on first read."""
        rel = normalize_artifact_path(artifact_path, allow_root=False)
        return self._open(rel)

    def download_artifacts(self, artifact_path: str, dst_path: str | os.PathLike[str] | None = None) -> str:
        """Copy a file or a directory tree to ``dst_path`` (a new temp dir by default).

        Returns the local path of the downloaded artifact: ``<dst_path>/<artifact_path>``.
        Every file lands atomically; nothing is written outside ``dst_path``.
        """
        rel = normalize_artifact_path(artifact_path)
        kind = self._kind(rel)
        if kind is None:
            raise ResourceDoesNotExist(f"Artifact {rel!r} does not exist under {self.root_uri}")
        files = [rel] if kind == "file" else self._walk_files(rel)
        for file_rel in files:  # validate everything before writing anything
            normalize_artifact_path(file_rel, allow_root=False)
        if dst_path is None:
            dst_root = Path(tempfile.mkdtemp(prefix="flowml-download-"))
        else:
            dst_root = Path(dst_path)
            dst_root.mkdir(parents=True, exist_ok=True)
        result = _safe_local_target(dst_root, rel)
        if kind == "dir":
            result.mkdir(parents=True, exist_ok=True)
        for file_rel in files:
            target = _safe_local_target(dst_root, file_rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            _safe_local_target(dst_root, file_rel)  # re-check now that parents exist
            self._download_file(file_rel, target)
        return str(result)

    def _download_file(self, rel: str, target: Path) -> None:
        """Copy one artifact file to ``target`` atomically (backends may use faster transfers)."""
        atomic_write(target, self._open(rel), durable=False)

    # ---- delete -------------------------------------------------------------------------------
    def delete_artifacts(self, artifact_path: str | None = None) -> None:
        """Delete a file or a directory tree (the whole root by default); missing is a no-op."""
        rel = normalize_artifact_path(artifact_path)
        self._delete(rel)

    # ---- backend primitives -------------------------------------------------------------------
    @abstractmethod
    def _write(self, rel: str, chunks: Iterable[bytes]) -> None:
        """Consume all of ``chunks`` and store them as ``rel`` (never read whole into memory)."""

    @abstractmethod
    def _open(self, rel: str) -> Iterator[bytes]:
        """Check ``rel`` is a file (else raise) and return an iterator over its bytes."""

    @abstractmethod
    def _kind(self, rel: str) -> Kind | None:
        """``"file"``, ``"dir"`` or ``None`` when nothing is stored at ``rel``."""

    @abstractmethod
    def _list(self, rel: str) -> list[FileInfo]:
        """Entries one level below ``rel``, with root-relative paths (any order)."""

    @abstractmethod
    def _walk_files(self, rel: str) -> list[str]:
        """Root-relative paths of every file below directory ``rel``."""

    @abstractmethod
    def _delete(self, rel: str) -> None:
        """Delete ``rel`` (file or tree); no-op when missing."""
