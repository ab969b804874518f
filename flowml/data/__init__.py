"""MLflow's ``mlflow.data``: dataset objects to log as run inputs (``flowml.log_input``).

``from_pandas(df)`` and ``from_numpy(features, targets=...)`` give datasets whose name, digest,
source, schema and profile are recorded exactly as MLflow records them, so runs logged by flowml
and by MLflow describe the same data the same way. pandas and numpy are imported only when a
dataset is built.
"""

from __future__ import annotations

from flowml.data import sources
from flowml.data._dataset import Dataset, get_source
from flowml.data._numpy import NumpyDataset, from_numpy
from flowml.data._pandas import PandasDataset, from_pandas
from flowml.data._schema import TensorDatasetSchema
from flowml.data._sources import (
    CodeDatasetSource,
    DatasetSource,
    FileSystemDatasetSource,
    HTTPDatasetSource,
    LocalArtifactDatasetSource,
    S3ArtifactDatasetSource,
)

__all__ = [
    "CodeDatasetSource",
    "Dataset",
    "DatasetSource",
    "FileSystemDatasetSource",
    "HTTPDatasetSource",
    "LocalArtifactDatasetSource",
    "NumpyDataset",
    "PandasDataset",
    "S3ArtifactDatasetSource",
    "TensorDatasetSchema",
    "from_numpy",
    "from_pandas",
    "get_source",
    "sources",
]
