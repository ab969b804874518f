"""Tracked Prefect pipelines: ``@flowml.flow``, ``@flowml.task`` and ``flowml.sweep``.

See :mod:`flowml.orchestration.decorators` for what each decorator logs and :mod:`flowml.orchestration.sweep`
for hyper-parameter sweeps on any Prefect task runner (threads, processes, Dask).
"""

from __future__ import annotations

from flowml.orchestration._context import TrackingContext, current_context
from flowml.orchestration.decorators import FlowmlTask, flow, task
from flowml.orchestration.sweep import SweepResult, Trial, loguniform, randint, sweep, uniform

__all__ = [
    "FlowmlTask",
    "SweepResult",
    "TrackingContext",
    "Trial",
    "current_context",
    "flow",
    "loguniform",
    "randint",
    "sweep",
    "task",
    "uniform",
]
