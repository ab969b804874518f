"""Stream a directory of artifacts as a zip file without holding it in memory or on disk.

:func:`zip_chunks` writes with :mod:`zipfile` into a sink that is emptied after every file chunk, so
memory stays at about one read chunk (plus deflate's window) however large the folder is. The sink
is not seekable, so zipfile writes each entry's sizes and CRC in a data descriptor after its data
(every unzip tool reads those). Entries are zip64 so files over 4 GiB work. Files that are already
compressed (images, archives, ...) are stored rather than deflated.
"""

from __future__ import annotations

import logging
import posixpath
import time
import zipfile
from collections.abc import Iterator, Sequence

from flowml.artifacts.base import ArtifactRepository

__all__ = ["archive_name", "zip_chunks"]

logger = logging.getLogger(__name__)

_STORED_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".webp", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".whl",
     ".jar", ".parquet", ".mp4", ".mp3", ".pt", ".npz"}
)  # fmt: skip


class _Sink:
    """A write-only, non-seekable file that hands what was written back in pieces."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def archive_name(folder: str, file_rel: str) -> str:
    """The entry name of ``file_rel`` in the zip of ``folder``: relative to the folder, under its
    base name (``model/MLmodel`` for folder ``a/model``); root-relative for the root (``""``)."""
    if not folder:
        return file_rel
    if file_rel == folder:  # a single file
        return posixpath.basename(folder)
    return posixpath.join(posixpath.basename(folder), file_rel[len(folder) + 1 :])


def zip_chunks(repo: ArtifactRepository, entries: Sequence[tuple[str, str]]) -> Iterator[bytes]:
    """The bytes of a zip holding, for each ``(path, name)``, the file ``path`` of ``repo`` (a
    validated root-relative path) as entry ``name``."""
    sink = _Sink()
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:
        for rel, name in entries:
            info = zipfile.ZipInfo(name, date_time=stamp)
            stored = posixpath.splitext(rel)[1].lower() in _STORED_SUFFIXES
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            stream = repo.open_stream(rel)
            try:
                with archive.open(info, "w", force_zip64=True) as entry:
                    for chunk in stream:
                        entry.write(chunk)
                        if data := sink.drain():
                            yield data
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
            if data := sink.drain():
                yield data
    if data := sink.drain():
        yield data
    logger.debug("Streamed a zip of %d file(s) from %s", len(entries), repo.root_uri)
