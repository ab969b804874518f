"""Every dataset source class, as MLflow's ``mlflow.data.sources`` lists them."""

from __future__ import annotations

from flowml.data._sources import (
    AzureBlobArtifactDatasetSource,
    AzureDataLakeArtifactDatasetSource,
    B2ArtifactDatasetSource,
    CodeDatasetSource,
    FTPArtifactDatasetSource,
    GCSArtifactDatasetSource,
    HdfsArtifactDatasetSource,
    HTTPDatasetSource,
    LocalArtifactDatasetSource,
    R2ArtifactDatasetSource,
    S3ArtifactDatasetSource,
    SFTPArtifactDatasetSource,
    ViewfsArtifactDatasetSource,
)

__all__ = [
    "AzureBlobArtifactDatasetSource",
    "AzureDataLakeArtifactDatasetSource",
    "B2ArtifactDatasetSource",
    "CodeDatasetSource",
    "FTPArtifactDatasetSource",
    "GCSArtifactDatasetSource",
    "HTTPDatasetSource",
    "HdfsArtifactDatasetSource",
    "LocalArtifactDatasetSource",
    "R2ArtifactDatasetSource",
    "S3ArtifactDatasetSource",
    "SFTPArtifactDatasetSource",
    "ViewfsArtifactDatasetSource",
]
