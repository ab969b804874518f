"""``from_numpy`` and :class:`NumpyDataset` (MLflow's ``mlflow.data.numpy_dataset``)."""

from __future__ import annotations

import json
import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeAlias

from flowml.data._dataset import Dataset, source_for
from flowml.data._digest import numpy_digest
from flowml.data._schema import TensorDatasetSchema, tensor_schema
from flowml.data._sources import DatasetSource

if TYPE_CHECKING:
    from numpy.typing import NDArray

    #: A numpy array, or a dict of named arrays.
    ArrayData: TypeAlias = NDArray[Any] | dict[str, NDArray[Any]]

__all__ = ["NumpyDataset", "from_numpy"]

logger = logging.getLogger(__name__)


def _attribute(data: Any, attr: str) -> Any:
    if isinstance(data, dict):
        return {key: getattr(array, attr) for key, array in data.items()}
    return getattr(data, attr)


class NumpyDataset(Dataset):
    """numpy features (an array or a dict of arrays) with optional targets."""

    def __init__(
        self,
        features: ArrayData,
        source: DatasetSource,
        targets: ArrayData | None = None,
        name: str | None = None,
        digest: str | None = None,
    ) -> None:
        self._features = features
        self._targets = targets
        super().__init__(source=source, name=name, digest=digest)

    def _compute_digest(self) -> str:
        return numpy_digest(self._features, self._targets)

    def to_dict(self) -> dict[str, str]:
        """The base fields plus ``schema`` (``{"mlflow_tensorspec": ...}`` JSON or ``None``), ``profile``."""
        schema = self.schema
        config: dict[str, Any] = super().to_dict()
        config["schema"] = json.dumps(schema.to_dict()) if schema is not None else None
        config["profile"] = json.dumps(self.profile)
        return config

    @property
    def features(self) -> ArrayData:
        return self._features

    @property
    def targets(self) -> ArrayData | None:
        return self._targets

    @property
    def profile(self) -> dict[str, Any]:
        """Shape, size and byte count of the features (and of the targets, when given)."""
        profile = {
            f"features_{attr}": _attribute(self._features, attr) for attr in ("shape", "size", "nbytes")
        }
        if self._targets is not None:
            profile.update(
                {f"targets_{attr}": _attribute(self._targets, attr) for attr in ("shape", "size", "nbytes")}
            )
        return profile

    @cached_property
    def schema(self) -> TensorDatasetSchema | None:
        """Tensor specs of the features and targets, or ``None`` when they cannot be inferred."""
        try:
            targets = tensor_schema(self._targets) if self._targets is not None else None
            return TensorDatasetSchema(features=tensor_schema(self._features), targets=targets)
        except Exception as exc:  # noqa: BLE001 - as MLflow: uninferable data has no schema
            logger.warning("Failed to infer schema for NumPy dataset. Exception: %s", exc)
            return None


def from_numpy(
    features: ArrayData,
    source: str | DatasetSource | None = None,
    targets: ArrayData | None = None,
    name: str | None = None,
    digest: str | None = None,
) -> NumpyDataset:
    """A :class:`NumpyDataset` for ``features`` (and ``targets``): arrays or dicts of named arrays.

    ``source`` is a path or URI or a :class:`~flowml.data.DatasetSource`; by default the calling code.
    ``name`` defaults to ``"dataset"`` and ``digest`` to MLflow's 8-character digest of the data.
    """
    return NumpyDataset(
        features=features, source=source_for(source), targets=targets, name=name, digest=digest
    )
