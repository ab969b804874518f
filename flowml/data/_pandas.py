"""``from_pandas`` and :class:`PandasDataset` (MLflow's ``mlflow.data.pandas_dataset``)."""

from __future__ import annotations

import json
import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

from flowml.data._dataset import Dataset, source_for
from flowml.data._digest import pandas_digest
from flowml.data._schema import frame_schema, schema_dicts
from flowml.data._sources import DatasetSource
from flowml.exceptions import InvalidParameterValue

if TYPE_CHECKING:
    import pandas as pd

    from flowml.models.signature import Schema

__all__ = ["PandasDataset", "from_pandas"]

logger = logging.getLogger(__name__)


class PandasDataset(Dataset):
    """A pandas DataFrame, optionally naming its target and predictions columns."""

    def __init__(
        self,
        df: pd.DataFrame,
        source: DatasetSource,
        targets: str | None = None,
        name: str | None = None,
        digest: str | None = None,
        predictions: str | None = None,
    ) -> None:
        for role, column in (("targets", targets), ("predictions", predictions)):
            if column is not None and column not in df.columns:
                raise InvalidParameterValue(
                    f"The specified pandas DataFrame does not contain the specified {role} column '{column}'."
                )
        self._df = df
        self._targets = targets
        self._predictions = predictions
        super().__init__(source=source, name=name, digest=digest)

    def _compute_digest(self) -> str:
        return pandas_digest(self._df)

    def to_dict(self) -> dict[str, str]:
        """The base fields plus ``schema`` (``{"mlflow_colspec": [...]}`` JSON or ``None``), ``profile``."""
        schema = self.schema
        config: dict[str, Any] = super().to_dict()
        config["schema"] = (
            json.dumps({"mlflow_colspec": schema_dicts(schema)}) if schema is not None else None
        )
        config["profile"] = json.dumps(self.profile)
        return config

    @property
    def df(self) -> pd.DataFrame:
        return self._df

    @property
    def targets(self) -> str | None:
        """The target column's name, if any."""
        return self._targets

    @property
    def predictions(self) -> str | None:
        """The predictions column's name, if any."""
        return self._predictions

    @property
    def profile(self) -> dict[str, int]:
        return {"num_rows": len(self._df), "num_elements": int(self._df.size)}

    @cached_property
    def schema(self) -> Schema | None:
        """The column schema MLflow infers for the frame, or ``None`` when it cannot be inferred."""
        try:
            return frame_schema(self._df)
        except Exception as exc:  # noqa: BLE001 - as MLflow: an uninferable frame has no schema
            logger.debug("Failed to infer schema for Pandas dataset. Exception: %s", exc)
            return None


def from_pandas(
    df: pd.DataFrame,
    source: str | DatasetSource | None = None,
    targets: str | None = None,
    name: str | None = None,
    digest: str | None = None,
    predictions: str | None = None,
) -> PandasDataset:
    """A :class:`PandasDataset` for ``df``.

    ``source`` is a path or URI (``s3://...``, ``https://...``, ``file:...``) or a
    :class:`~flowml.data.DatasetSource`; by default the calling code (``mlflow.source.*`` tags).
    ``targets``/``predictions`` name columns of ``df``; ``name`` defaults to ``"dataset"`` and
    ``digest`` to MLflow's 8-character digest of the data.
    """
    return PandasDataset(
        df=df,
        source=source_for(source),
        targets=targets,
        name=name,
        digest=digest,
        predictions=predictions,
    )
