"""Artifact-repository fixtures: the same tests run on a local directory and on S3 (moto server).

``backend`` gives a repository plus a way to look *around* its root: a canary file / sibling
prefix next to the root, and a snapshot (path -> sha256) of everything outside the root, so a test
can prove an operation neither read, created nor deleted anything outside.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flowml.artifacts import ArtifactRepository, LocalArtifactRepository, S3ArtifactRepository

CANARY = b"flowml-canary-7f3a9c do not leak"


@dataclass
class Backend:
    name: str
    repo: ArtifactRepository
    make_repo: Callable[..., ArtifactRepository]
    snapshot_outside: Callable[[], dict[str, str]]
    read_outside: Callable[[str], bytes | None]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _local_backend(tmp_path: Path) -> Backend:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "canary.txt").write_bytes(CANARY)
    (tmp_path / "root-sibling").mkdir()
    (tmp_path / "root-sibling" / "canary.txt").write_bytes(CANARY)

    def snapshot() -> dict[str, str]:
        seen: dict[str, str] = {}
        for dirpath, dirnames, filenames in os.walk(tmp_path):
            here = Path(dirpath)
            if here == root:
                dirnames.clear()
                continue
            for name in dirnames + filenames:
                path = here / name
                if path == root:
                    continue
                rel = str(path.relative_to(tmp_path))
                seen[rel] = _sha(path.read_bytes()) if path.is_file() and not path.is_symlink() else "<dir>"
        return seen

    def read(rel: str) -> bytes | None:
        path = tmp_path / rel
        return path.read_bytes() if path.is_file() else None

    def make(**kwargs: Any) -> ArtifactRepository:
        return LocalArtifactRepository(str(root), **kwargs)

    return Backend("local", make(), make, snapshot, read)


def _s3_backend(root_uri: str, endpoint: str, client: Any) -> Backend:
    bucket = root_uri.split("/")[2]
    for key in ("canary.txt", "prefix-sibling/canary.txt", "other/canary.txt", "prefix.txt"):
        client.put_object(Bucket=bucket, Key=key, Body=CANARY)

    def snapshot() -> dict[str, str]:
        seen: dict[str, str] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                if not obj["Key"].startswith("prefix/"):
                    seen[obj["Key"]] = obj["ETag"]
        return seen

    def read(key: str) -> bytes | None:
        try:
            body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
        return body

    def make(**kwargs: Any) -> ArtifactRepository:
        return S3ArtifactRepository(root_uri, endpoint_url=endpoint, **kwargs)

    return Backend("s3", make(), make, snapshot, read)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return _local_backend(tmp_path)
    return _s3_backend(
        request.getfixturevalue("s3_artifact_root"),
        request.getfixturevalue("s3_endpoint_url"),
        request.getfixturevalue("s3_client"),
    )


@pytest.fixture
def local_backend(tmp_path: Path) -> Backend:
    return _local_backend(tmp_path)


@pytest.fixture
def s3_backend(s3_artifact_root: str, s3_endpoint_url: str, s3_client: Any) -> Backend:
    return _s3_backend(s3_artifact_root, s3_endpoint_url, s3_client)
