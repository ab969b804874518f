"""S3 backend specifics against the loopback moto server: multipart, checksums, paging, faults."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowml.artifacts import S3ArtifactRepository, get_artifact_repository
from flowml.entities import FileInfo
from flowml.exceptions import ResourceDoesNotExist, TemporarilyUnavailable
from tests.artifacts.conftest import Backend

pytestmark = pytest.mark.s3

MiB = 1024 * 1024


def _count_calls(repo: S3ArtifactRepository, operation: str) -> list[int]:
    calls: list[int] = []
    repo._client().meta.events.register(f"after-call.s3.{operation}", lambda **_: calls.append(1))
    return calls


def test_multipart_upload_of_20_mib_file_round_trips(
    s3_artifact_root: str, s3_endpoint_url: str, s3_client: Any, tmp_path: Path
) -> None:
    repo = S3ArtifactRepository(
        s3_artifact_root,
        endpoint_url=s3_endpoint_url,
        multipart_threshold=8 * MiB,
        multipart_chunksize=8 * MiB,
    )
    src = tmp_path / "model.bin"
    with open(src, "wb") as fh:
        for _ in range(20):
            fh.write(os.urandom(MiB))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    uploads = _count_calls(repo, "UploadPart")

    [record] = repo.log_artifact(src, "models")
    assert (record.path, record.file_size, record.sha256) == ("models/model.bin", 20 * MiB, digest)
    assert len(uploads) == 3  # 8 + 8 + 4 MiB
    head = s3_client.head_object(Bucket=repo.bucket, Key="prefix/models/model.bin", ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-3")
    assert head["ContentLength"] == 20 * MiB
    assert head.get("ChecksumSHA256")  # composite (checksum of part checksums) for multipart

    out = Path(repo.download_artifacts("models", tmp_path / "out")) / "model.bin"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert hashlib.sha256(b"".join(repo.open_stream("models/model.bin"))).hexdigest() == digest


def test_single_put_carries_sha256_checksum(s3_backend: Backend, s3_client: Any) -> None:
    data = os.urandom(100_000)
    repo = s3_backend.repo
    assert isinstance(repo, S3ArtifactRepository)
    record = repo.log_bytes(data, "x.bin")
    head = s3_client.head_object(Bucket=repo.bucket, Key="prefix/x.bin", ChecksumMode="ENABLED")
    assert "-" not in head["ETag"]
    assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(record.sha256)).decode()


def test_streamed_multipart_write_has_exact_digest(s3_artifact_root: str, s3_endpoint_url: str) -> None:
    repo = S3ArtifactRepository(
        s3_artifact_root,
        endpoint_url=s3_endpoint_url,
        multipart_threshold=5 * MiB,
        multipart_chunksize=5 * MiB,
    )
    sha = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        for size in (1, 3 * MiB, 7, 5 * MiB, 2 * MiB + 3):  # odd sizes straddle part boundaries
            block = os.urandom(size)
            sha.update(block)
            yield block

    record = repo.write_stream("s.bin", chunks())
    assert record.sha256 == sha.hexdigest()
    assert hashlib.sha256(b"".join(repo.open_stream("s.bin"))).hexdigest() == record.sha256


def test_failed_multipart_stream_leaves_no_object_and_no_pending_upload(
    s3_artifact_root: str, s3_endpoint_url: str, s3_client: Any
) -> None:
    repo = S3ArtifactRepository(
        s3_artifact_root,
        endpoint_url=s3_endpoint_url,
        multipart_threshold=5 * MiB,
        multipart_chunksize=5 * MiB,
    )

    def chunks() -> Iterator[bytes]:
        for _ in range(12):
            yield os.urandom(MiB)
        raise OSError("source went away")

    with pytest.raises(OSError, match="source went away"):
        repo.write_stream("broken.bin", chunks())
    assert repo.list_artifacts() == []
    assert s3_client.list_multipart_uploads(Bucket=repo.bucket).get("Uploads", []) == []


def test_listing_pages_and_delete_batches(
    s3_artifact_root: str, s3_endpoint_url: str, s3_backend: Backend
) -> None:
    repo = S3ArtifactRepository(
        s3_artifact_root, endpoint_url=s3_endpoint_url, page_size=2, delete_batch_size=3
    )
    for i in range(7):
        repo.log_bytes(b"f" * i, f"d/f{i}.txt")
    for name in ("s1", "s2", "s3"):
        repo.log_bytes(b"x", f"d/{name}/inner.txt")
    before = s3_backend.snapshot_outside()
    lists = _count_calls(repo, "ListObjectsV2")

    listing = repo.list_artifacts("d")
    assert listing == [FileInfo(f"d/f{i}.txt", False, i) for i in range(7)] + [
        FileInfo(f"d/{name}", True, None) for name in ("s1", "s2", "s3")
    ]
    assert len(lists) == 5  # 10 entries, 2 per page

    deletes = _count_calls(repo, "DeleteObjects")
    repo.delete_artifacts("d")
    assert repo.list_artifacts() == []
    assert len(deletes) == 4  # the key "d" itself plus 10 keys under "d/", in batches of 3
    assert s3_backend.snapshot_outside() == before


def test_bucket_root_without_prefix(s3_client: Any, s3_endpoint_url: str, tmp_path: Path) -> None:
    bucket = f"flowml-test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=bucket)
    repo = get_artifact_repository(f"s3://{bucket}", s3_endpoint_url=s3_endpoint_url)
    repo.log_bytes(b"1", "a/b.txt")
    repo.log_bytes(b"2", "c.txt")
    assert repo.list_artifacts() == [FileInfo("a", True, None), FileInfo("c.txt", False, 1)]
    assert Path(repo.download_artifacts("a/b.txt", tmp_path)).read_bytes() == b"1"
    repo.delete_artifacts()
    assert s3_client.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_missing_bucket_is_resource_does_not_exist(s3_endpoint_url: str, aws_test_env: None) -> None:
    repo = S3ArtifactRepository("s3://flowml-no-such-bucket/p", endpoint_url=s3_endpoint_url)
    with pytest.raises(ResourceDoesNotExist):
        repo.open_stream("x")


def test_client_is_lazy_single_and_uses_standard_retries(s3_backend: Backend) -> None:
    repo = s3_backend.make_repo()
    assert isinstance(repo, S3ArtifactRepository)
    assert repo._client_instance is None
    repo.log_bytes(b"x", "a")
    client = repo._client_instance
    repo.list_artifacts()
    assert repo._client() is client
    # Config(retries={"max_attempts": 5}) counts *retries*: botocore stores 6 total attempts.
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}


def test_endpoint_comes_only_from_the_caller(monkeypatch: pytest.MonkeyPatch, aws_test_env: None) -> None:
    monkeypatch.setenv("FLOWML_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    repo = get_artifact_repository("s3://some-bucket/p")
    assert isinstance(repo, S3ArtifactRepository)
    assert "amazonaws.com" in repo._client().meta.endpoint_url
    repo = get_artifact_repository("s3://some-bucket/p", s3_endpoint_url="http://127.0.0.1:9")
    assert isinstance(repo, S3ArtifactRepository)
    assert repo._client().meta.endpoint_url == "http://127.0.0.1:9"


# ---- 5xx faults: cannot be produced for real by moto, so injected at botocore's send hook --------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _inject_503(repo: S3ArtifactRepository, operation: str, failures: int) -> list[int]:
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    attempts: list[int] = []
    body = b"<Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>"

    def handler(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(1)
        if len(attempts) <= failures:
            headers = HTTPHeaders()
            headers["Content-Type"] = "application/xml"
            return AWSResponse(request.url, 503, headers, _Raw(body))
        return None

    repo._client().meta.events.register(f"before-send.s3.{operation}", handler)
    return attempts


def test_transient_503_is_retried(s3_backend: Backend) -> None:
    repo = s3_backend.make_repo()
    assert isinstance(repo, S3ArtifactRepository)
    attempts = _inject_503(repo, "PutObject", failures=2)
    record = repo.log_bytes(b"survives", "r.txt")
    assert len(attempts) == 3
    assert b"".join(repo.open_stream("r.txt")) == b"survives"
    assert record.file_size == 8


def test_persistent_503_gives_temporarily_unavailable_after_bounded_retries(s3_backend: Backend) -> None:
    repo = s3_backend.make_repo()
    assert isinstance(repo, S3ArtifactRepository)
    attempts = _inject_503(repo, "PutObject", failures=100)
    with pytest.raises(TemporarilyUnavailable):
        repo.log_bytes(b"lost", "r.txt")
    assert len(attempts) == 6  # 1 attempt + max_attempts=5 retries
    with pytest.raises(ResourceDoesNotExist):
        repo.open_stream("r.txt")
