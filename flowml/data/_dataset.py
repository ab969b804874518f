"""The dataset base class and the helpers shared by the concrete dataset types."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any

from flowml.data._context import context_tags
from flowml.data._sources import CodeDatasetSource, DatasetSource, resolve_source, source_from_json
from flowml.entities import Dataset as DatasetEntity
from flowml.entities import DatasetInput
from flowml.exceptions import InvalidParameterValue

__all__ = ["Dataset", "get_source", "source_for"]


class Dataset(ABC):
    """A dataset used by runs: a name, a digest (fingerprint), a source and, per type, schema/profile.

    Subclasses set the attributes their digest needs, then call ``super().__init__``.
    """

    def __init__(self, source: DatasetSource, name: str | None = None, digest: str | None = None) -> None:
        self._name = name
        self._source = source
        self._digest = digest or self._compute_digest()

    @abstractmethod
    def _compute_digest(self) -> str:
        """The digest used when none is given (8 hex characters for flowml's types)."""

    def to_dict(self) -> dict[str, str]:
        """``name``, ``digest``, ``source`` (JSON), ``source_type``; subclasses add schema, profile."""
        return {
            "name": self.name,
            "digest": self.digest,
            "source": self.source.to_json(),
            "source_type": self.source._get_source_type(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def _get_source_type(self) -> str:
        return self.source._get_source_type()

    @property
    def name(self) -> str:
        """The dataset's name (``"dataset"`` unless one was given)."""
        return self._name if self._name is not None else "dataset"

    @property
    def digest(self) -> str:
        return self._digest

    @property
    def source(self) -> DatasetSource:
        return self._source

    @property
    @abstractmethod
    def profile(self) -> Any | None:
        """Summary statistics (row counts, shapes, ...), or ``None``."""

    @property
    @abstractmethod
    def schema(self) -> Any | None:
        """The dataset's schema, or ``None`` when it cannot be inferred."""

    def _to_mlflow_entity(self) -> DatasetEntity:
        """The :class:`flowml.entities.Dataset` recorded when a run logs this dataset as an input."""
        d = self.to_dict()
        return DatasetEntity(
            name=d["name"],
            digest=d["digest"],
            source_type=d["source_type"],
            source=d["source"],
            schema=d.get("schema"),
            profile=d.get("profile"),
        )

    def __repr__(self) -> str:
        kind = self._get_source_type()
        return f"<{type(self).__name__} name={self.name!r} digest={self.digest!r} source_type={kind!r}>"


def source_for(source: str | DatasetSource | Any | None) -> DatasetSource:
    """The ``source`` argument of ``from_*`` as a :class:`DatasetSource` (the calling code when ``None``)."""
    if source is None:
        return CodeDatasetSource(tags=context_tags())
    if isinstance(source, DatasetSource):
        return source
    return resolve_source(source)


def get_source(dataset: DatasetEntity | DatasetInput | Dataset) -> DatasetSource:
    """The source of a dataset, of a logged dataset entity, or of a run's dataset input."""
    if isinstance(dataset, DatasetInput):
        dataset = dataset.dataset
    if isinstance(dataset, DatasetEntity):
        return source_from_json(dataset.source, dataset.source_type)
    if isinstance(dataset, Dataset):
        return dataset.source
    raise InvalidParameterValue(
        f"Unrecognized dataset type {type(dataset)}. Expected one of: `flowml.data.Dataset`, "
        "`flowml.entities.Dataset`, `flowml.entities.DatasetInput`."
    )
