"""Artifacts in a local directory: atomic, fsynced writes and symlink-aware path checks."""

from __future__ import annotations

import logging
import os
import re
import shutil
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from flowml.artifacts.base import (
    CHUNK_SIZE,
    TEMP_PREFIX,
    ArtifactRepository,
    Kind,
    atomic_write,
    fsync_dir,
    is_within,
    join_artifact_path,
    normalize_artifact_path,
)
from flowml.entities import FileInfo
from flowml.exceptions import InvalidParameterValue, ResourceDoesNotExist

__all__ = ["LocalArtifactRepository", "is_local_uri", "local_path_from_uri", "uri_scheme"]

logger = logging.getLogger(__name__)


_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


def uri_scheme(uri: str) -> str:
    """``uri``'s scheme, lower-cased ("" for a plain path)."""
    match = _SCHEME_RE.match(uri)
    return match.group(1).lower() if match else ""


def is_local_uri(uri: str) -> bool:
    """A plain path or a ``file:`` URI: a local directory. A one-letter "scheme" is a Windows drive
    (``C:\\...``), never a URI."""
    scheme = uri_scheme(uri)
    return scheme in ("", "file") or len(scheme) == 1


def local_path_from_uri(uri: str) -> str:
    """The filesystem path of a plain path or a ``file:`` URI (``file:///p``, ``file://localhost/p``).

    ``file:`` URIs must be absolute, local, without query/fragment and without ``..`` segments.
    """
    if "\x00" in uri:
        raise InvalidParameterValue("Artifact root must not contain NUL bytes")
    if not uri.lower().startswith("file:"):
        return uri
    parts = urllib.parse.urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise InvalidParameterValue(f"file: artifact URI must be local, got host {parts.netloc!r}")
    if parts.query or parts.fragment:
        raise InvalidParameterValue(f"file: artifact URI must not have a query or fragment: {uri!r}")
    path = urllib.parse.unquote(parts.path)  # POSIX url2pathname, without importing urllib.request
    if not path.startswith("/"):
        raise InvalidParameterValue(f"file: artifact URI must be absolute: {uri!r}")
    if "\x00" in path or ".." in path.split("/"):
        raise InvalidParameterValue(f"file: artifact URI must not contain '..' or NUL: {uri!r}")
    return path


def _stream_file(fh: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    try:
        while chunk := fh.read(chunk_size):
            yield chunk
    finally:
        fh.close()


class LocalArtifactRepository(ArtifactRepository):
    """Artifact files below a local directory (created on first write).

    Writes go to a temp file in the destination directory, are fsynced, ``os.replace``d into place
    and the directory is fsynced. Any path whose real path (symlinks resolved) leaves the root is
    rejected with :class:`InvalidParameterValue`.
    """

    def __init__(self, root_uri: str, *, chunk_size: int = CHUNK_SIZE) -> None:
        super().__init__(root_uri)
        self.root_path = Path(os.path.abspath(local_path_from_uri(root_uri)))
        self.chunk_size = chunk_size

    # ---- path resolution ----------------------------------------------------------------------
    def _root_real(self) -> str:
        return os.path.realpath(self.root_path)

    def _resolve(self, rel: str) -> Path:
        target = self.root_path.joinpath(*rel.split("/")) if rel else self.root_path
        if rel and not is_within(self._root_real(), os.path.realpath(target)):
            raise InvalidParameterValue(f"Invalid artifact path {rel!r}: resolves outside the artifact root")
        return target

    def _makedirs(self, path: Path, rel: str) -> None:
        missing: list[Path] = []
        probe = path
        while not os.path.lexists(probe) and probe != probe.parent:
            missing.append(probe)
            probe = probe.parent
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise InvalidParameterValue(f"Cannot store {rel!r}: a parent path is a file") from exc
        for created in reversed(missing):
            fsync_dir(created.parent)

    def local_path(self, artifact_path: str | None = None) -> str:
        """The absolute path of a stored file or directory, in place (MLflow's ``get_local_path``:
        ``download_artifacts`` without a destination returns local artifacts where they are)."""
        rel = normalize_artifact_path(artifact_path)
        target = self._resolve(rel)
        if not (target.is_file() or target.is_dir()):
            raise ResourceDoesNotExist(f"No such artifact: '{rel}'")
        return str(target)

    # ---- primitives ---------------------------------------------------------------------------
    def _write(self, rel: str, chunks: Iterable[bytes]) -> None:
        target = self._resolve(rel)
        if target.is_dir():
            raise InvalidParameterValue(f"Cannot store {rel!r}: a directory exists at that path")
        self._makedirs(target.parent, rel)
        self._resolve(rel)  # re-check now that the parents exist
        atomic_write(target, chunks, durable=True)

    def _open(self, rel: str) -> Iterator[bytes]:
        target = self._resolve(rel)
        if target.is_dir():
            raise InvalidParameterValue(f"Artifact {rel!r} is a directory")
        if not target.is_file():
            raise ResourceDoesNotExist(f"Artifact {rel!r} does not exist under {self.root_uri}")
        return _stream_file(open(target, "rb"), self.chunk_size)

    def _kind(self, rel: str) -> Kind | None:
        target = self._resolve(rel)
        if target.is_file():
            return "file"
        if not rel or target.is_dir():
            return "dir"
        return None

    def _list(self, rel: str) -> list[FileInfo]:
        target = self._resolve(rel)
        if not target.is_dir():
            return []
        root_real = self._root_real()
        infos: list[FileInfo] = []
        with os.scandir(target) as entries:
            for entry in entries:
                if entry.name.startswith(TEMP_PREFIX):
                    continue
                child = join_artifact_path(rel, entry.name)
                try:
                    normalize_artifact_path(child, allow_root=False)
                except InvalidParameterValue:
                    logger.warning("Not listing %s: its name is not a valid artifact path", entry.path)
                    continue
                if entry.is_symlink() and not is_within(root_real, os.path.realpath(entry.path)):
                    logger.warning("Not listing %s: symlink pointing outside the artifact root", entry.path)
                    continue
                try:
                    if entry.is_dir():
                        infos.append(FileInfo(path=child, is_dir=True, file_size=None))
                    elif entry.is_file():
                        infos.append(FileInfo(path=child, is_dir=False, file_size=entry.stat().st_size))
                except OSError:  # vanished while listing
                    continue
        return infos

    def _walk_files(self, rel: str) -> list[str]:
        top = self._resolve(rel)
        root_real = self._root_real()
        files: list[str] = []
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            for name in dirnames + filenames:
                path = here / name
                if path.is_symlink() and not is_within(root_real, os.path.realpath(path)):
                    raise InvalidParameterValue(
                        f"Artifact {path.relative_to(self.root_path).as_posix()!r} is a symlink "
                        "pointing outside the artifact root"
                    )
            for name in dirnames:
                if (here / name).is_symlink():
                    logger.warning("Not following directory symlink %s", here / name)
            for name in filenames:
                path = here / name
                if name.startswith(TEMP_PREFIX) or not path.is_file():
                    continue
                files.append(path.relative_to(self.root_path).as_posix())
        return sorted(files)

    def _delete(self, rel: str) -> None:
        target = self._resolve(rel)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif os.path.lexists(target):
            target.unlink()
        else:
            return
        fsync_dir(target.parent)
