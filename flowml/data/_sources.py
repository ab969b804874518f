"""Where a dataset came from: MLflow's dataset sources, resolved from strings as MLflow resolves them.

A source string resolves to (``source_type``: source JSON):

* ``http(s)://...`` -> :class:`HTTPDatasetSource` (``http``: ``{"url": ...}``);
* a local path (or :class:`pathlib.Path`) or a ``file:`` URI -> :class:`LocalArtifactDatasetSource`
  (``local``: ``{"uri": ...}``, the string kept as given);
* ``s3``, ``r2``, ``b2``, ``gs``, ``wasbs``, ``ftp``, ``sftp``, ``hdfs``, ``viewfs`` and ``abfss``
  URIs -> one ``...ArtifactDatasetSource`` each (``source_type`` = the scheme: ``{"uri": ...}``).

Anything else raises :class:`~flowml.exceptions.ResourceDoesNotExist` with MLflow's message and
error code. A dataset made without a source gets a :class:`CodeDatasetSource` (``code``:
``{"tags": {...}}``) holding the run-context tags of :mod:`flowml.data._context`.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

from flowml.exceptions import FlowmlError, InvalidParameterValue, ResourceDoesNotExist

__all__ = [
    "ARTIFACT_SOURCES",
    "AzureBlobArtifactDatasetSource",
    "AzureDataLakeArtifactDatasetSource",
    "B2ArtifactDatasetSource",
    "CodeDatasetSource",
    "DatasetSource",
    "FTPArtifactDatasetSource",
    "FileSystemDatasetSource",
    "GCSArtifactDatasetSource",
    "HTTPDatasetSource",
    "HdfsArtifactDatasetSource",
    "LocalArtifactDatasetSource",
    "R2ArtifactDatasetSource",
    "S3ArtifactDatasetSource",
    "SFTPArtifactDatasetSource",
    "ViewfsArtifactDatasetSource",
    "resolve_source",
    "source_from_json",
]

logger = logging.getLogger(__name__)


class DatasetSource(ABC):
    """The origin of a dataset (a file, a bucket object, a URL, the calling code, ...)."""

    @staticmethod
    @abstractmethod
    def _get_source_type() -> str:
        """The source type recorded with the dataset, e.g. ``"local"``, ``"s3"``, ``"http"``."""

    @abstractmethod
    def load(self, dst_path: str | None = None) -> Any:
        """Fetch what the source refers to (for file-like sources: a local path to it)."""

    @staticmethod
    @abstractmethod
    def _can_resolve(raw_source: Any) -> bool:
        """Whether this kind of source describes ``raw_source``."""

    @classmethod
    @abstractmethod
    def _resolve(cls, raw_source: Any) -> DatasetSource:
        """The source describing ``raw_source`` (only called when ``_can_resolve`` says so)."""

    @abstractmethod
    def to_dict(self) -> dict[Any, Any]:
        """A JSON-compatible dict describing the source."""

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    @abstractmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> DatasetSource:
        """The source described by ``source_dict`` (the inverse of :meth:`to_dict`)."""

    @classmethod
    def from_json(cls, source_json: str) -> DatasetSource:
        return cls.from_dict(json.loads(source_json))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, DatasetSource)
            and type(other) is type(self)
            and self.to_dict() == other.to_dict()
        )

    def __hash__(self) -> int:
        return hash((type(self), self.to_json()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


class CodeDatasetSource(DatasetSource):
    """The code that built the dataset, described by run-context tags (``mlflow.source.name``, ...)."""

    def __init__(self, tags: dict[Any, Any] | None) -> None:
        self._tags = tags

    @staticmethod
    def _get_source_type() -> str:
        return "code"

    def load(self, dst_path: str | None = None) -> Any:
        raise NotImplementedError("A code dataset source cannot be loaded")

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> CodeDatasetSource:
        raise NotImplementedError("A code dataset source is never resolved from a raw source")

    def to_dict(self) -> dict[Any, Any]:
        return {"tags": self._tags}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> CodeDatasetSource:
        return cls(tags=source_dict.get("tags"))


class HTTPDatasetSource(DatasetSource):
    """A dataset at an HTTP or HTTPS URL."""

    def __init__(self, url: str) -> None:
        self._url = url

    @property
    def url(self) -> str:
        return self._url

    @staticmethod
    def _get_source_type() -> str:
        return "http"

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        if not isinstance(raw_source, str):
            return False
        try:
            return urlparse(raw_source).scheme in ("http", "https")
        except ValueError:
            return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> HTTPDatasetSource:
        return cls(raw_source)

    def _filename(self, content_disposition: str | None) -> str:
        for match in re.finditer(r"filename=(.+)", content_disposition or ""):
            filename = match[1].strip("'\"")
            if os.path.basename(filename) != filename:
                raise InvalidParameterValue(
                    f"Invalid filename in Content-Disposition header: {filename}. "
                    "It must be a file name, not a path."
                )
            return filename
        return posixpath.basename(urlparse(self.url).path)

    def load(self, dst_path: str | None = None) -> str:
        """Download the URL into ``dst_path`` (a new temporary directory by default); returns the file."""
        import httpx

        with httpx.stream("GET", self.url, follow_redirects=True) as response:
            if response.is_error:
                raise FlowmlError(f"Failed to download {self.url}: HTTP {response.status_code}")
            name = self._filename(response.headers.get("Content-Disposition")) or "dataset_source"
            target = os.path.join(dst_path or tempfile.mkdtemp(prefix="flowml-dataset-"), name)
            with open(target, "wb") as out:
                for chunk in response.iter_bytes(1024 * 1024):
                    out.write(chunk)
        return target

    def to_dict(self) -> dict[Any, Any]:
        return {"url": self.url}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> HTTPDatasetSource:
        url = source_dict.get("url")
        if url is None:
            raise InvalidParameterValue('Failed to parse HTTPDatasetSource. Missing expected key: "url"')
        return cls(url=url)


class FileSystemDatasetSource(DatasetSource):
    """A dataset on a filesystem or in blob storage, identified by a URI."""

    @property
    @abstractmethod
    def uri(self) -> str:
        """The dataset's URI, e.g. ``s3://bucket/path`` or ``/tmp/data.csv``."""


def _is_local(text: str) -> bool:
    """MLflow's ``is_local_uri`` for artifact URIs (a ``file:`` URI on another host is not local)."""
    if os.name == "nt" and text.startswith("\\\\"):
        return False
    parsed = urlparse(text)
    if parsed.scheme == "":
        return True
    host = parsed.hostname
    remote = bool(host) and not (host == "." or str(host).startswith(("localhost", "127.0.0.1")))
    if parsed.scheme == "file":
        return not remote
    if remote:
        return False
    drive = Path(text).drive.lower()
    return os.name == "nt" and len(parsed.scheme) == 1 and drive[:1] == parsed.scheme


class _ArtifactDatasetSource(FileSystemDatasetSource):
    """A dataset identified by an artifact-store URI; ``source_type`` is the URI scheme."""

    source_type: ClassVar[str]

    def __init__(self, uri: str) -> None:
        self._uri = uri

    @property
    def uri(self) -> str:
        return self._uri

    @classmethod
    def _get_source_type(cls) -> str:
        return cls.source_type

    @classmethod
    def _can_resolve(cls, raw_source: Any) -> bool:
        # As MLflow: anything whose ``str`` has the scheme (MLflow checks the type only for local paths).
        try:
            return urlparse(str(raw_source)).scheme == cls.source_type
        except ValueError:
            return False

    @classmethod
    def _resolve(cls, raw_source: Any) -> _ArtifactDatasetSource:
        return cls(str(raw_source))

    def load(self, dst_path: str | None = None) -> str:
        """Download the file or directory at :attr:`uri` to ``dst_path``; returns its local path."""
        from flowml.artifacts import get_artifact_repository
        from flowml.settings import get_settings

        parent, _, name = self.uri.rstrip("/").rpartition("/")
        if not name or not parent or parent.endswith(":/"):
            raise InvalidParameterValue(
                f"Cannot download the bucket root {self.uri!r}; name a file or folder"
            )
        repo = get_artifact_repository(parent, s3_endpoint_url=get_settings().s3_endpoint_url)
        return repo.download_artifacts(name, dst_path)

    def to_dict(self) -> dict[Any, Any]:
        return {"uri": self.uri}

    @classmethod
    def from_dict(cls, source_dict: dict[Any, Any]) -> _ArtifactDatasetSource:
        uri = source_dict.get("uri")
        if uri is None:
            raise InvalidParameterValue(f'Failed to parse {cls.__name__}. Missing expected key: "uri"')
        return cls(uri=uri)


class LocalArtifactDatasetSource(_ArtifactDatasetSource):
    """A dataset on the local filesystem: a path (relative paths kept as given) or a ``file:`` URI."""

    source_type = "local"

    @classmethod
    def _can_resolve(cls, raw_source: Any) -> bool:
        if not isinstance(raw_source, str | Path):
            return False
        try:
            return _is_local(str(raw_source))
        except ValueError:
            return False

    def load(self, dst_path: str | None = None) -> str:
        """The local path itself, or (with ``dst_path``) a copy of the file or folder there."""
        from flowml.artifacts.local import local_path_from_uri

        path = local_path_from_uri(self.uri)
        if not os.path.exists(path):
            raise ResourceDoesNotExist(f"Dataset source {self.uri!r} does not exist")
        if dst_path is None:
            return os.path.abspath(path)
        from flowml.artifacts import LocalArtifactRepository

        parent, name = os.path.split(os.path.abspath(path).rstrip(os.sep))
        return LocalArtifactRepository(parent).download_artifacts(name, dst_path)


class S3ArtifactDatasetSource(_ArtifactDatasetSource):
    source_type = "s3"


class R2ArtifactDatasetSource(_ArtifactDatasetSource):
    source_type = "r2"


class B2ArtifactDatasetSource(_ArtifactDatasetSource):
    source_type = "b2"


class GCSArtifactDatasetSource(_ArtifactDatasetSource):
    source_type = "gs"


class AzureBlobArtifactDatasetSource(_ArtifactDatasetSource):
    source_type = "wasbs"


class FTPArtifactDatasetSource(_ArtifactDatasetSource):
    source_type = "ftp"


class SFTPArtifactDatasetSource(_ArtifactDatasetSource):
    source_type = "sftp"


class HdfsArtifactDatasetSource(_ArtifactDatasetSource):
    source_type = "hdfs"


class ViewfsArtifactDatasetSource(_ArtifactDatasetSource):
    source_type = "viewfs"


class AzureDataLakeArtifactDatasetSource(_ArtifactDatasetSource):
    source_type = "abfss"


#: The URI-based sources, by ``source_type``.
ARTIFACT_SOURCES: dict[str, type[_ArtifactDatasetSource]] = {
    cls.source_type: cls
    for cls in (
        LocalArtifactDatasetSource,
        S3ArtifactDatasetSource,
        R2ArtifactDatasetSource,
        B2ArtifactDatasetSource,
        GCSArtifactDatasetSource,
        AzureBlobArtifactDatasetSource,
        FTPArtifactDatasetSource,
        SFTPArtifactDatasetSource,
        HdfsArtifactDatasetSource,
        ViewfsArtifactDatasetSource,
        AzureDataLakeArtifactDatasetSource,
    )
}

_SOURCES: tuple[type[DatasetSource], ...] = (*ARTIFACT_SOURCES.values(), HTTPDatasetSource, CodeDatasetSource)


def resolve_source(raw_source: Any) -> DatasetSource:
    """The source a raw ``source`` argument (a path or URI string, or a ``Path``) stands for."""
    for cls in _SOURCES:
        if cls._can_resolve(raw_source):
            return cls._resolve(raw_source)
    raise ResourceDoesNotExist(
        f"Could not find a source information resolver for the specified dataset source: {raw_source}."
    )


def source_from_json(source_json: str, source_type: str) -> DatasetSource:
    """The source recorded as ``source_json`` with ``source_type`` (e.g. on a logged dataset)."""
    for cls in _SOURCES:
        if cls._get_source_type() == source_type:
            return cls.from_json(source_json)
    raise ResourceDoesNotExist(
        f"Could not parse dataset source from JSON due to unrecognized source type: {source_type}."
    )
