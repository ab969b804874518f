"""``flowml.sweep``: a hyper-parameter search whose trials are Prefect tasks on any task runner.

A sweep is a tracked flow run (``sweep-<train_fn>``; a subflow, nested under the caller's run, when called
inside a ``@flowml.flow``) whose task runner runs the trials: threads by default, or ``ProcessPoolTaskRunner``
/ ``prefect_dask.DaskTaskRunner``. Each trial is a ``@flowml.task`` run: a child run with the trial's params,
the numbers ``train_fn`` returns as metrics and the tags ``flowml.sweep.trial`` / ``flowml.sweep.parent``. The
parent run gets the best trial's params (under their own names), its ``metric`` value, the
``flowml.sweep.best_run_id`` tag and ``sweep.*`` params describing the search.

``train_fn(**params, **fixed_params)`` returns a dict of numbers containing ``metric`` (or just that number).

The trials are one ``search_runs`` away (one row per trial, params + metrics: parallel-coordinates ready)::

    flowml.search_runs(experiment_ids=[result.experiment_id],
                       filter_string=f"tags.`mlflow.parentRunId` = '{result.run_id}'")

or ``result.table()``, which keeps the trial number, params (as numbers where they parse) and metrics.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import numbers
import os
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from flowml.entities import Param, Run, RunTag
from flowml.exceptions import InvalidParameterValue
from flowml.orchestration._context import CONTEXT_PARAMETER, batches, capture, scalar_params
from flowml.orchestration.decorators import FlowmlTask, flow, task

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SweepResult", "Trial", "loguniform", "randint", "sweep", "uniform"]

TRIAL_TAG = "flowml.sweep.trial"
PARENT_TAG = "flowml.sweep.parent"
BEST_RUN_TAG = "flowml.sweep.best_run_id"

_log = logging.getLogger(__name__)


# -- search spaces -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Distribution:
    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise InvalidParameterValue(
                f"{type(self).__name__}: low must be < high, got {self.low}, {self.high}"
            )

    def sample(self, rng: random.Random) -> float | int:
        raise NotImplementedError


@dataclass(frozen=True)
class _Uniform(_Distribution):
    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class _LogUniform(_Distribution):
    def __post_init__(self) -> None:
        super().__post_init__()
        if self.low <= 0:
            raise InvalidParameterValue("loguniform needs low > 0")

    def sample(self, rng: random.Random) -> float:
        return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))


@dataclass(frozen=True)
class _RandInt(_Distribution):
    def sample(self, rng: random.Random) -> int:
        return rng.randint(int(self.low), int(self.high))


def uniform(low: float, high: float) -> _Distribution:
    """A float drawn uniformly from [low, high] (random search only)."""
    return _Uniform(low, high)


def loguniform(low: float, high: float) -> _Distribution:
    """A float whose log is uniform on [log low, log high] (random search only)."""
    return _LogUniform(low, high)


def randint(low: int, high: int) -> _Distribution:
    """An integer drawn uniformly from low..high inclusive (random search only)."""
    return _RandInt(low, high)


def _candidates(
    space: Mapping[str, Any], n_trials: int | None, search: str, seed: int | None
) -> list[dict[str, Any]]:
    if not space:
        raise InvalidParameterValue("sweep: the search space is empty")
    for name, values in space.items():
        if isinstance(values, _Distribution):
            continue
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise InvalidParameterValue(
                f"sweep: space[{name!r}] must be a non-empty list of values "
                "or uniform/loguniform/randint(...)"
            )
    if n_trials is not None and n_trials < 1:
        raise InvalidParameterValue(f"sweep: n_trials must be >= 1, got {n_trials}")
    if search == "grid":
        ranges = [n for n, v in space.items() if isinstance(v, _Distribution)]
        if ranges:
            raise InvalidParameterValue(f"sweep: grid search needs lists of values; {ranges} are ranges")
        names = list(space)
        grid = (dict(zip(names, combo, strict=True)) for combo in itertools.product(*space.values()))
        return list(itertools.islice(grid, n_trials))
    if search == "random":
        if n_trials is None:
            raise InvalidParameterValue("sweep: random search needs n_trials")
        rng = random.Random(seed)
        return [
            {
                n: v.sample(rng) if isinstance(v, _Distribution) else rng.choice(list(v))
                for n, v in space.items()
            }
            for _ in range(n_trials)
        ]
    raise InvalidParameterValue(f"sweep: search must be 'grid' or 'random', not {search!r}")


# -- results -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    index: int
    params: dict[str, Any]
    run_id: str | None
    status: str  # the Prefect state name: COMPLETED, FAILED, ...
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class SweepResult:
    """The sweep's parent run, its trials (in submission order) and the best one."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    metric: str
    mode: str
    trials: list[Trial]
    best: Trial

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best.params)

    @property
    def best_value(self) -> float:
        return self.best.metrics[self.metric]

    @property
    def best_run_id(self) -> str | None:
        return self.best.run_id

    def table(self) -> pd.DataFrame:
        """One row per trial run: ``trial``, ``run_id``, ``status``, params (numeric when they parse),
        metrics."""
        import pandas as pd

        from flowml.client import FlowmlClient

        client = FlowmlClient(self.tracking_uri)
        runs: list[Run] = []
        token: str | None = None
        while True:
            page = client.search_runs(
                [self.experiment_id],
                f"tags.`mlflow.parentRunId` = '{self.run_id}'",
                max_results=1000,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                break
        rows = []
        for run in runs:
            row: dict[str, Any] = {
                "trial": int(run.data.tags.get(TRIAL_TAG, -1)),
                "run_id": run.info.run_id,
                "status": run.info.status,
            }
            row.update({f"params.{k}": v for k, v in run.data.params.items()})
            row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
            rows.append(row)
        frame = pd.DataFrame.from_records(rows)
        for column in [c for c in frame.columns if c.startswith("params.")]:
            with contextlib.suppress(ValueError, TypeError):
                frame[column] = pd.to_numeric(frame[column])
        return frame.sort_values("trial").reset_index(drop=True) if rows else frame


# -- the sweep ---------------------------------------------------------------------------------------
def _raw_function(train_fn: Callable[..., Any]) -> Callable[..., Any]:
    from prefect import Flow, Task

    if isinstance(train_fn, FlowmlTask):
        raw: Callable[..., Any] = train_fn.fn.__wrapped__  # type: ignore[attr-defined]
        return raw
    if isinstance(train_fn, Task):
        return train_fn.fn
    if isinstance(train_fn, Flow) or not callable(train_fn):
        raise TypeError(f"sweep: train_fn must be a function (or a task), not {train_fn!r}")
    return train_fn


def _as_metrics(fn: Callable[..., Any], metric: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def trial(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if isinstance(result, numbers.Real) and not isinstance(result, bool):
            return {metric: float(result)}
        return result

    return trial


def _metric_of(result: Any, metric: str) -> float | None:
    if isinstance(result, Mapping):
        value = result.get(metric)
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(float(value)):
            return float(value)
    return None


def _run_trials(
    trial_task: Any,
    candidates: list[dict[str, Any]],
    fixed: Mapping[str, Any],
    metric: str,
    mode: str,
    search: str,
) -> SweepResult:
    from prefect.futures import wait

    ctx = capture()
    assert ctx is not None, "the sweep flow opens its run before this body runs"
    client = ctx.client()
    described = {
        "sweep.metric": metric,
        "sweep.mode": mode,
        "sweep.search": search,
        "sweep.n_trials": len(candidates),
    }
    batches(client, ctx.run_id, params=[Param(k, str(v)) for k, v in described.items()])
    futures = [
        trial_task.submit(
            **fixed,
            **params,
            **{
                CONTEXT_PARAMETER: ctx.with_tags(
                    {TRIAL_TAG: i, PARENT_TAG: ctx.run_id, "mlflow.runName": f"trial-{i}"}
                )
            },
        )
        for i, params in enumerate(candidates)
    ]
    wait(futures)
    found = client.search_runs(
        [ctx.experiment_id], f"tags.`mlflow.parentRunId` = '{ctx.run_id}'", max_results=10_000
    )
    run_ids = {int(r.data.tags[TRIAL_TAG]): r.info.run_id for r in found if TRIAL_TAG in r.data.tags}
    trials = []
    for i, (params, future) in enumerate(zip(candidates, futures, strict=True)):
        state = future.state
        result = future.result(raise_on_failure=False) if state.is_completed() else None
        value = _metric_of(result, metric)
        metrics = {
            k: float(v)
            for k, v in (result or {}).items()
            if isinstance(v, numbers.Real) and not isinstance(v, bool)
        }
        error = None if state.is_completed() else str(state.message or state.name)
        if state.is_completed() and value is None:
            error = f"train_fn returned no number for metric {metric!r}: {result!r}"[:500]
            _log.warning("sweep trial %d: %s", i, error)
        trials.append(Trial(i, params, run_ids.get(i), str(state.type.value), metrics, error))
    scored = [t for t in trials if t.error is None]
    if not scored:
        reasons = "; ".join(f"trial {t.index}: {t.error}" for t in trials[:3])
        raise InvalidParameterValue(f"sweep: no trial reported metric {metric!r} ({reasons})")
    best = (min if mode == "min" else max)(scored, key=lambda t: t.metrics[metric])
    best_params = scalar_params({k: v for k, v in best.params.items()})
    batches(
        client,
        ctx.run_id,
        params=best_params,
        tags=[RunTag(BEST_RUN_TAG, str(best.run_id)), RunTag("flowml.sweep.best_trial", str(best.index))],
    )
    client.log_metric(ctx.run_id, metric, best.metrics[metric])
    client.log_metric(ctx.run_id, "n_trials_failed", float(len(trials) - len(scored)))
    return SweepResult(ctx.run_id, ctx.experiment_id, ctx.tracking_uri, metric, mode, trials, best)


def sweep(
    train_fn: Callable[..., Any],
    space: Mapping[str, Any],
    n_trials: int | None = None,
    metric: str = "loss",
    mode: Literal["min", "max"] = "min",
    search: Literal["grid", "random"] = "grid",
    task_runner: Any = None,
    seed: int | None = None,
    *,
    fixed_params: Mapping[str, Any] | None = None,
    experiment: str | None = None,
    name: str | None = None,
    task_options: Mapping[str, Any] | None = None,
) -> SweepResult:
    """Run ``train_fn`` on points of ``space`` as tracked Prefect tasks; return the trials and the best one.

    ``space`` maps a parameter name to a list of values (grid: every combination, the first ``n_trials`` of
    them
    if given; random: a seeded choice) or, for random search, ``uniform`` / ``loguniform`` / ``randint``.
    ``task_runner`` defaults to ``ThreadPoolTaskRunner(max_workers=os.cpu_count())``. ``fixed_params`` are
    passed
    to every trial unchanged; ``task_options`` go to ``@flowml.task`` (e.g. ``retries``).
    """
    if mode not in ("min", "max"):
        raise InvalidParameterValue(f"sweep: mode must be 'min' or 'max', not {mode!r}")
    raw = _raw_function(train_fn)
    candidates = _candidates(space, n_trials, search, seed)
    fixed = dict(fixed_params or {})
    if overlap := set(fixed) & set(space):
        raise InvalidParameterValue(f"sweep: {sorted(overlap)} are both swept and fixed")
    from prefect.cache_policies import NO_CACHE
    from prefect.task_runners import ThreadPoolTaskRunner

    fn_name = re.sub(r"[^\w.\-]+", "", getattr(raw, "__name__", "")) or "train"
    options: dict[str, Any] = {
        "name": fn_name,
        "cache_policy": NO_CACHE,
        "persist_result": False,
        **(task_options or {}),
    }
    trial_task = task(log="child", log_outputs=True, **options)(_as_metrics(raw, metric))
    label = name or f"sweep-{fn_name}"
    runner = task_runner if task_runner is not None else ThreadPoolTaskRunner(max_workers=os.cpu_count() or 2)

    def run_sweep() -> SweepResult:
        return _run_trials(trial_task, candidates, fixed, metric, mode, search)

    run_sweep.__name__ = run_sweep.__qualname__ = label.replace("-", "_")
    sweep_flow = flow(
        experiment=experiment,
        log_params=False,
        name=label,
        task_runner=runner,
        persist_result=False,
        validate_parameters=False,
    )(run_sweep)
    result: SweepResult = sweep_flow()
    return result
