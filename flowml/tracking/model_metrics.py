"""MLflow 3's model metrics from the fluent API: ``log_metric(..., model_id=, dataset=)``.

A metric point logged with a ``model_id`` (given, else the active model of
:func:`~flowml.tracking.logged_models.set_active_model`, else the models this process's ``log_model``
recorded as the active run's outputs at the same ``step``) is written to the run as usual and, in the
same batch, as a metric of each of those logged models, with the dataset's name and digest when one
is given. As in MLflow, the run records as inputs the dataset (unless it already has it) and the
models it neither logged nor used before.

Points with a model are written at once (the metric buffer carries plain run metrics only). Without
a model nothing changes: the buffered path costs nothing extra.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flowml.entities import DatasetInput, LoggedModelInput, Metric, ModelMetric
from flowml.tracking.logged_models import get_active_model_id

if TYPE_CHECKING:
    from flowml.client import FlowmlClient
    from flowml.tracking.fluent import ActiveRun

__all__ = ["log_model_points", "metric_model_ids"]

logger = logging.getLogger(__name__)


def metric_model_ids(model_id: str | None, active: ActiveRun | None, run_id: str, step: int) -> list[str]:
    """The logged models a new point at ``step`` belongs to (see the module docstring)."""
    if model_id:
        return [model_id]
    active_model = get_active_model_id()
    if active_model:
        return [active_model]
    if active is not None and active.run_id == run_id:
        return active.model_outputs_at(step)
    return []


def log_model_points(
    client: FlowmlClient, run_id: str, points: Sequence[Metric], model_ids: Sequence[str], dataset: Any
) -> None:
    """Write ``points`` to the run and as metrics of ``model_ids``, recording the inputs first."""
    name = getattr(dataset, "name", None) if dataset is not None else None
    digest = getattr(dataset, "digest", None) if dataset is not None else None
    run = client.get_run(run_id)
    known = {i.model_id for i in run.inputs.model_inputs} | {o.model_id for o in run.outputs.model_outputs}
    used = [LoggedModelInput(m) for m in dict.fromkeys(model_ids) if m not in known]
    datasets: list[DatasetInput] = []
    if dataset is not None and (name, digest) not in {
        (i.dataset.name, i.dataset.digest) for i in run.inputs.dataset_inputs
    }:
        from flowml.tracking.io import _dataset_input

        item = _dataset_input(dataset, None, None)  # MLflow's dataset checks and conversion
        if item is not None:
            datasets.append(item)
    if used or datasets:
        client.log_inputs(run_id, datasets=datasets, models=used)
    model_points = [
        ModelMetric(p.key, p.value, p.timestamp, p.step, model, run_id, name, digest)
        for model in model_ids
        for p in points
    ]
    logger.debug("logging %d points for %d logged models of run %s", len(points), len(model_ids), run_id)
    client._log_model_points(run_id, points, model_points)
