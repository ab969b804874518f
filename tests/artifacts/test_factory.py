"""get_artifact_repository: backend by URI scheme; the package's public surface and import cost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import flowml.artifacts
from flowml.artifacts import LocalArtifactRepository, S3ArtifactRepository, get_artifact_repository
from flowml.exceptions import InvalidParameterValue


def test_public_api_is_pinned() -> None:
    assert sorted(flowml.artifacts.__all__) == [
        "ArtifactRecord",
        "ArtifactRepository",
        "LocalArtifactRepository",
        "S3ArtifactRepository",
        "download_artifacts",
        "get_artifact_repository",
        "list_artifacts",
        "load_dict",
        "load_image",
        "load_text",
        "normalize_artifact_path",
    ]


def test_import_does_not_load_boto3() -> None:
    code = (
        "import sys, flowml.artifacts\n"
        "sys.exit(any(m.split('.')[0] in ('boto3', 'botocore', 's3transfer') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/abs/path", "/abs/path"),
        ("relative/dir", str(Path.cwd() / "relative/dir")),
        ("./flowml-artifacts", str(Path.cwd() / "flowml-artifacts")),
        ("file:///abs/path", "/abs/path"),
        ("file://localhost/abs/path", "/abs/path"),
        ("file:/abs/path", "/abs/path"),
        ("file:///abs/with%20space", "/abs/with space"),
    ],
)
def test_local_uris(uri: str, expected: str) -> None:
    repo = get_artifact_repository(uri)
    assert isinstance(repo, LocalArtifactRepository)
    assert str(repo.root_path) == expected
    assert repo.root_uri == uri


@pytest.mark.parametrize(
    ("uri", "bucket", "prefix"),
    [
        ("s3://bucket-a/some/prefix", "bucket-a", "some/prefix"),
        ("s3://bucket-a", "bucket-a", ""),
        ("s3://bucket-a/p/", "bucket-a", "p"),
    ],
)
def test_s3_uris(uri: str, bucket: str, prefix: str) -> None:
    repo = get_artifact_repository(uri, s3_endpoint_url="http://127.0.0.1:1")
    assert isinstance(repo, S3ArtifactRepository)
    assert (repo.bucket, repo.prefix, repo.endpoint_url) == (bucket, prefix, "http://127.0.0.1:1")


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "http://host/x",
        "mlflow-artifacts://h/x",
        "dbfs:/x",
        "gs://b/x",
        "s3://",
        "s3://Bad_Bucket/x",
        "s3://b/x/../../y",
        "s3://bucket-a/x/%2e%2e/y",
        "s3://bucket-a//x",
        "s3://bucket-a/x?versionId=1",
        "file://otherhost/etc",
        "file:relative",
        "file:///srv/a/../../etc",
        "file:///tmp/x#frag",
        "/tmp/a\x00b",
    ],
)
def test_rejected_uris(uri: str) -> None:
    with pytest.raises(InvalidParameterValue):
        get_artifact_repository(uri)
