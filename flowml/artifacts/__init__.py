"""Artifact storage: one :class:`ArtifactRepository` interface, local-directory and S3 backends.

``get_artifact_repository(uri)`` picks the backend by URI scheme: plain paths and ``file:`` URIs
are local directories, ``s3://bucket/prefix`` is S3 (boto3 is imported only when S3 is used).

MLflow's ``mlflow.artifacts`` functions (``download_artifacts``, ``list_artifacts``, ``load_text``,
``load_dict``, ``load_image``) live here too, so ``flowml.artifacts`` is that module for MLflow users.
"""

from __future__ import annotations

from flowml.artifacts._fluent import download_artifacts, list_artifacts, load_dict, load_image, load_text
from flowml.artifacts.base import ArtifactRecord, ArtifactRepository, normalize_artifact_path
from flowml.artifacts.local import LocalArtifactRepository, is_local_uri, uri_scheme
from flowml.artifacts.s3 import S3ArtifactRepository
from flowml.exceptions import InvalidParameterValue

__all__ = [
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


def get_artifact_repository(uri: str, *, s3_endpoint_url: str | None = None) -> ArtifactRepository:
    """The repository for ``uri``: ``s3://`` → S3, ``file:`` or a plain path → local directory.

    ``s3_endpoint_url`` (``FLOWML_S3_ENDPOINT_URL``) points S3 at MinIO or another endpoint.
    Other schemes raise :class:`InvalidParameterValue`. No I/O happens here.
    """
    if not isinstance(uri, str) or not uri:
        raise InvalidParameterValue("Artifact URI must be a non-empty string")
    if is_local_uri(uri):
        return LocalArtifactRepository(uri)
    scheme = uri_scheme(uri)
    if scheme == "s3":
        return S3ArtifactRepository(uri, endpoint_url=s3_endpoint_url)
    raise InvalidParameterValue(f"Unsupported artifact URI scheme {scheme!r} in {uri!r}")
