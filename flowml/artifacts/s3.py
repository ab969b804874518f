"""Artifacts in S3 (or MinIO / any S3 endpoint) via boto3's managed transfers.

boto3/botocore are imported only when the repository first talks to S3, so importing this module
is cheap. One client per repository, created lazily, with botocore's ``standard`` retry mode.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flowml.artifacts.base import (
    CHUNK_SIZE,
    TEMP_PREFIX,
    ArtifactRepository,
    Kind,
    join_artifact_path,
    normalize_artifact_path,
)
from flowml.entities import FileInfo
from flowml.exceptions import (
    FlowmlError,
    InvalidParameterValue,
    PermissionDenied,
    ResourceDoesNotExist,
    TemporarilyUnavailable,
)

__all__ = ["S3ArtifactRepository", "parse_s3_uri"]

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
#: S3's maximum number of keys per DeleteObjects / ListObjectsV2 page.
S3_MAX_KEYS = 1000
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9]$")
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_DENIED = {"403", "AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServiceUnavailable"}


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ``("bucket", "some/prefix")``; the prefix must be path-safe."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme != "s3":
        raise InvalidParameterValue(f"Not an s3:// URI: {uri!r}")
    if not _BUCKET_RE.match(parts.netloc):
        raise InvalidParameterValue(f"Invalid S3 bucket name in {uri!r}")
    if parts.query or parts.fragment:
        raise InvalidParameterValue(f"S3 artifact URI must not have a query or fragment: {uri!r}")
    prefix = parts.path[1:] if parts.path.startswith("/") else parts.path
    return parts.netloc, normalize_artifact_path(prefix)


def _map_error(exc: BaseException, what: str) -> FlowmlError | None:
    """The flowml error for a botocore/boto3 failure, or None when ``exc`` is not one."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = f"S3 {what} failed: {code or status} {error.get('Message', '')}".strip()
        if code in _NOT_FOUND or status == 404:
            return ResourceDoesNotExist(f"S3 {what}: not found")
        if code in _DENIED or status == 403:
            return PermissionDenied(message)
        if code in _THROTTLED or status >= 500:
            return TemporarilyUnavailable(message)
        return FlowmlError(message)
    if isinstance(exc, (BotoCoreError, Boto3Error)):
        return TemporarilyUnavailable(f"S3 {what} failed: {exc}")
    return None


@contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    try:
        yield
    except FlowmlError:
        raise
    except Exception as exc:
        mapped = _map_error(exc, what)
        if mapped is None:
            raise
        logger.debug("S3 %s failed", what, exc_info=True)
        raise mapped from exc


class _ChunkReader:
    """A read-only, non-seekable file over byte chunks.

    ``read(n)`` returns exactly ``n`` bytes until the end (s3transfer relies on that to size
    parts). Being non-seekable makes s3transfer read it once, in order, so hashing the chunks on
    the way through gives the digest of exactly what was uploaded.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = bytearray()
        self._eof = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int | None = -1) -> bytes:
        while not self._eof and (size is None or size < 0 or len(self._buffer) < size):
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                self._eof = True
        if size is None or size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


def _stream_body(body: Any, chunk_size: int, what: str) -> Iterator[bytes]:
    try:
        with _s3_errors(what):
            yield from body.iter_chunks(chunk_size)
    finally:
        body.close()


class S3ArtifactRepository(ArtifactRepository):
    """Artifacts under ``s3://bucket/prefix``.

    Uploads use ``upload_fileobj`` with a :class:`TransferConfig` (multipart above
    ``multipart_threshold``) and ``ChecksumAlgorithm=SHA256`` so S3 verifies every request body.
    The endpoint (``FLOWML_S3_ENDPOINT_URL``) is passed in by the caller, never read here.
    """

    def __init__(
        self,
        root_uri: str,
        *,
        endpoint_url: str | None = None,
        multipart_threshold: int = 64 * MiB,
        multipart_chunksize: int = 16 * MiB,
        max_concurrency: int = 4,
        checksum_algorithm: str | None = "SHA256",
        page_size: int = S3_MAX_KEYS,
        delete_batch_size: int = S3_MAX_KEYS,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        super().__init__(root_uri)
        self.bucket, self.prefix = parse_s3_uri(root_uri)
        if not 1 <= page_size <= S3_MAX_KEYS or not 1 <= delete_batch_size <= S3_MAX_KEYS:
            raise ValueError(f"page_size and delete_batch_size must be within 1..{S3_MAX_KEYS}")
        if multipart_chunksize < 5 * MiB:
            raise ValueError("multipart_chunksize must be at least 5 MiB (S3's minimum part size)")
        self.endpoint_url = endpoint_url
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = multipart_chunksize
        self.max_concurrency = max_concurrency
        self.checksum_algorithm = checksum_algorithm
        self.page_size = page_size
        self.delete_batch_size = delete_batch_size
        self.chunk_size = chunk_size
        self._client_instance: Any = None
        self._transfer_config_instance: Any = None
        self._lock = threading.Lock()

    # ---- boto3 plumbing (lazy) ----------------------------------------------------------------
    def _client(self) -> Any:
        if self._client_instance is None:
            with self._lock:
                if self._client_instance is None:
                    import boto3
                    from boto3.s3.transfer import TransferConfig
                    from botocore.config import Config

                    config = Config(retries={"mode": "standard", "max_attempts": 5})
                    transfer = TransferConfig(
                        multipart_threshold=self.multipart_threshold,
                        multipart_chunksize=self.multipart_chunksize,
                        max_concurrency=self.max_concurrency,
                        preferred_transfer_client="classic",
                    )
                    # Bounds memory for streamed (non-seekable) uploads: parts buffered at once.
                    transfer.max_in_memory_upload_chunks = self.max_concurrency * 2
                    self._transfer_config_instance = transfer
                    self._client_instance = boto3.session.Session().client(
                        "s3", endpoint_url=self.endpoint_url, config=config
                    )
        return self._client_instance

    def _transfer_config(self) -> Any:
        self._client()
        return self._transfer_config_instance

    def _key(self, rel: str) -> str:
        return join_artifact_path(self.prefix, rel)

    def _dir_prefix(self, rel: str) -> str:
        key = self._key(rel)
        return f"{key}/" if key else ""

    def _rel_of(self, key: str) -> str:
        return key[len(self._dir_prefix("")) :]

    def _safe_child(self, key: str) -> str | None:
        """Root-relative path of ``key``, or None (logged) when it is not a valid artifact path."""
        child = self._rel_of(key)
        try:
            if normalize_artifact_path(child, allow_root=False) == child:
                return child
        except InvalidParameterValue:
            pass
        logger.warning("Ignoring S3 key %r: not a valid artifact path", key)
        return None

    def _paginate(self, prefix: str, *, delimiter: bool) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = "/"
        paginator = self._client().get_paginator("list_objects_v2")
        with _s3_errors(f"list s3://{self.bucket}/{prefix}"):
            yield from paginator.paginate(**kwargs, PaginationConfig={"PageSize": self.page_size})

    # ---- primitives ---------------------------------------------------------------------------
    def _write(self, rel: str, chunks: Iterable[bytes]) -> None:
        key = self._key(rel)
        extra = {"ChecksumAlgorithm": self.checksum_algorithm} if self.checksum_algorithm else {}
        with _s3_errors(f"upload s3://{self.bucket}/{key}"):
            self._client().upload_fileobj(
                _ChunkReader(chunks), self.bucket, key, ExtraArgs=extra, Config=self._transfer_config()
            )

    def _open(self, rel: str) -> Iterator[bytes]:
        key = self._key(rel)
        what = f"get s3://{self.bucket}/{key}"
        with _s3_errors(what):
            response = self._client().get_object(Bucket=self.bucket, Key=key)
        return _stream_body(response["Body"], self.chunk_size, what)

    def _kind(self, rel: str) -> Kind | None:
        if not rel:
            return "dir"
        key = self._key(rel)
        try:
            with _s3_errors(f"head s3://{self.bucket}/{key}"):
                self._client().head_object(Bucket=self.bucket, Key=key)
            return "file"
        except ResourceDoesNotExist:
            pass
        with _s3_errors(f"list s3://{self.bucket}/{key}/"):
            response = self._client().list_objects_v2(Bucket=self.bucket, Prefix=f"{key}/", MaxKeys=1)
        return "dir" if response.get("KeyCount", 0) else None

    def _list(self, rel: str) -> list[FileInfo]:
        prefix = self._dir_prefix(rel)
        infos: list[FileInfo] = []
        for page in self._paginate(prefix, delimiter=True):
            for common in page.get("CommonPrefixes", []):
                child = self._safe_child(common["Prefix"][:-1])
                if child is not None:
                    infos.append(FileInfo(path=child, is_dir=True, file_size=None))
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/"):  # directory marker objects made by consoles/tools
                    continue
                child = self._safe_child(obj["Key"])
                if child is not None:
                    infos.append(FileInfo(path=child, is_dir=False, file_size=int(obj["Size"])))
        return infos

    def _walk_files(self, rel: str) -> list[str]:
        files: list[str] = []
        for page in self._paginate(self._dir_prefix(rel), delimiter=False):
            keys = (obj["Key"] for obj in page.get("Contents", []))
            files.extend(self._rel_of(key) for key in keys if not key.endswith("/"))
        return sorted(files)

    def _download_file(self, rel: str, target: Path) -> None:
        key = self._key(rel)
        tmp = target.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            with _s3_errors(f"download s3://{self.bucket}/{key}"):
                self._client().download_file(self.bucket, key, str(tmp), Config=self._transfer_config())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _delete(self, rel: str) -> None:
        client = self._client()
        prefix = self._dir_prefix(rel)
        pending = [self._key(rel)] if rel else []  # the file itself, if ``rel`` is one
        # Re-list from the start after each batch, so deleting never disturbs a continuation token.
        while True:
            room = self.delete_batch_size - len(pending)
            listed: list[str] = []
            truncated = True
            if room > 0:
                with _s3_errors(f"list s3://{self.bucket}/{prefix}"):
                    response = client.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=room)
                listed = [obj["Key"] for obj in response.get("Contents", [])]
                truncated = bool(response.get("IsTruncated"))
            if pending or listed:
                self._delete_keys(pending + listed)
            if room > 0 and not truncated:
                return
            pending = []

    def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), self.delete_batch_size):
            batch = keys[start : start + self.delete_batch_size]
            with _s3_errors(f"delete from s3://{self.bucket}"):
                response = self._client().delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise FlowmlError(
                    f"S3 delete failed for {len(errors)} key(s), e.g. {first.get('Key')!r}: "
                    f"{first.get('Code')} {first.get('Message', '')}".strip()
                )
            logger.debug("Deleted %d key(s) from s3://%s", len(batch), self.bucket)
