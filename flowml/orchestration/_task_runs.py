"""Task-run tracking: what a ``@flowml.task`` wrapper does around each call (and helpers shared with flows).

``child`` mode opens a nested run per task run attempt (scalar inputs as params, ``duration_s``, status, the
``flowml.prefect.*`` task-run tags); ``parent`` mode logs into the caller's run; with no context and no active
run the task logs to a standalone run. The context arrives as the ``flowml_context`` keyword argument, which
``FlowmlTask`` fills in at call / submit / map time (see :mod:`flowml.orchestration._context`).
"""

from __future__ import annotations

import functools
import inspect
import time
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from flowml.client import FlowmlClient
from flowml.entities import Metric, RunStatus
from flowml.orchestration import _hooks
from flowml.orchestration._context import (
    CONTEXT_PARAMETER,
    TrackingContext,
    activated,
    batches,
    capture,
    metrics_from,
    now_ms,
    scalar_params,
)
from flowml.settings import get_settings

__all__ = [
    "DURATION_METRIC",
    "STANDALONE_TAG",
    "LogMode",
    "TaskSpec",
    "bound_arguments",
    "make_task_fn",
    "rebind",
    "with_context",
]

LogMode = Literal["child", "parent"]

STANDALONE_TAG = "flowml.orchestration.standalone"
DURATION_METRIC = "duration_s"


def rebind(wrapper: Callable[..., Any], fn: Callable[..., Any], signature: inspect.Signature) -> Any:
    """``wrapper`` re-created with ``fn``'s globals (so Prefect resolves ``fn``'s annotations and source file
    through it) and ``fn``'s name, docs and signature. ``wrapper`` must only use closure variables."""
    rebound = types.FunctionType(
        wrapper.__code__,
        getattr(fn, "__globals__", wrapper.__globals__),
        wrapper.__name__,
        wrapper.__defaults__,
        wrapper.__closure__,
    )
    rebound.__kwdefaults__ = wrapper.__kwdefaults__
    functools.update_wrapper(rebound, fn)
    rebound.__signature__ = signature  # type: ignore[attr-defined]
    return rebound


def bound_arguments(
    signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return {}
    bound.apply_defaults()
    values: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            values.update(value)
        elif kind is not inspect.Parameter.VAR_POSITIONAL:
            values[name] = value
    return values


@dataclass(frozen=True)
class TaskSpec:
    name: str
    log: LogMode
    log_outputs: bool
    signature: inspect.Signature


class _Outcome:
    __slots__ = ("result",)

    def __init__(self) -> None:
        self.result: Any = None


def _task_run_facts() -> tuple[dict[str, str], str | None, int]:
    from prefect.context import TaskRunContext

    prefect_ctx = TaskRunContext.get()
    if prefect_ctx is None:
        return {}, None, 1
    task_run = prefect_ctx.task_run
    attempt = max(int(task_run.run_count or 1), 1)
    tags = {
        "flowml.prefect.task_run_id": str(task_run.id),
        "flowml.prefect.task_run_name": str(task_run.name),
        "flowml.prefect.attempt": str(attempt),
    }
    if task_run.flow_run_id is not None:
        tags[_hooks.FLOW_RUN_ID_TAG] = str(task_run.flow_run_id)
    return tags, str(task_run.name), attempt


@contextmanager
def _parent_run(spec: TaskSpec, ctx: TrackingContext) -> Iterator[_Outcome]:
    from flowml.tracking import fluent

    outcome = _Outcome()
    current = fluent.active_run()
    if current is not None and current.run_id == ctx.run_id:  # same process and context: log through it
        yield outcome
    else:
        client = ctx.client()
        with activated(client.get_run(ctx.run_id), client, ctx, owned=False) as active:
            yield outcome
        current = active
    if spec.log_outputs:
        metrics = metrics_from(outcome.result, now_ms())
        if metrics:
            batches(current.client, ctx.run_id, metrics=metrics)


@contextmanager
def _child_run(spec: TaskSpec, ctx: TrackingContext | None, values: Mapping[str, Any]) -> Iterator[_Outcome]:
    tags, run_name, _ = _task_run_facts()
    tags["flowml.prefect.task_name"] = spec.name
    if ctx is not None:
        client = ctx.client()
        experiment_id = ctx.experiment_id
        tags["mlflow.parentRunId"] = ctx.run_id
        tags.update(ctx.tags)
    else:
        from flowml.projects._execute import experiment_id_for

        client = FlowmlClient()
        experiment_id = experiment_id_for(client, None, None)
        tags[STANDALONE_TAG] = "true"
    run_name = tags.pop("mlflow.runName", None) or run_name or spec.name
    run = client.create_run(experiment_id, tags=tags, run_name=run_name)
    run_id = run.info.run_id
    if ctx is not None:
        child_ctx = ctx.under(run_id, experiment_id)
    else:
        settings = get_settings()
        child_ctx = TrackingContext(
            run_id, experiment_id, client.tracking_uri, settings.artifact_root, settings.s3_endpoint_url
        )
    outcome = _Outcome()
    status = RunStatus.FAILED
    started = time.perf_counter()
    try:
        params = scalar_params(values)
        if params:
            batches(client, run_id, params=params)
        with activated(run, client, child_ctx, owned=True):
            yield outcome
        status = RunStatus.FINISHED
    except Exception:
        status = RunStatus.FAILED
        raise
    except BaseException:
        status = RunStatus.KILLED
        raise
    finally:
        ended = now_ms()
        metrics = {DURATION_METRIC: Metric(DURATION_METRIC, time.perf_counter() - started, ended, 0)}
        if spec.log_outputs and status == RunStatus.FINISHED:
            metrics.update((m.key, m) for m in metrics_from(outcome.result, ended))
        try:
            batches(client, run_id, metrics=list(metrics.values()))
        finally:
            client.set_terminated(run_id, status, ended)


@contextmanager
def _task_run(spec: TaskSpec, args: tuple[Any, ...], kwargs: dict[str, Any], ctx: Any) -> Iterator[_Outcome]:
    if ctx is not None and not isinstance(ctx, TrackingContext):
        raise TypeError(f"{CONTEXT_PARAMETER} is reserved by @flowml.task; got {ctx!r}")
    ctx = ctx if ctx is not None else capture()
    if spec.log == "parent" and ctx is not None:
        with _parent_run(spec, ctx) as outcome:
            yield outcome
        return
    with _child_run(spec, ctx, bound_arguments(spec.signature, args, kwargs)) as outcome:
        yield outcome


def _task_signature(fn: Callable[..., Any]) -> inspect.Signature:
    signature = inspect.signature(fn)
    if CONTEXT_PARAMETER in signature.parameters:
        raise TypeError(
            f"@flowml.task reserves the parameter name {CONTEXT_PARAMETER!r}; rename it in {fn!r}"
        )
    params = list(signature.parameters.values())
    extra = inspect.Parameter(CONTEXT_PARAMETER, inspect.Parameter.KEYWORD_ONLY, default=None)
    at = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params))
    return signature.replace(parameters=[*params[:at], extra, *params[at:]])


def make_task_fn(fn: Callable[..., Any], spec: TaskSpec) -> Any:
    opened = _task_run
    if inspect.iscoroutinefunction(fn):

        async def async_wrapper(*args: Any, flowml_context: Any = None, **kwargs: Any) -> Any:
            with opened(spec, args, kwargs, flowml_context) as outcome:
                outcome.result = await fn(*args, **kwargs)
            return outcome.result

        return rebind(async_wrapper, fn, _task_signature(fn))

    def wrapper(*args: Any, flowml_context: Any = None, **kwargs: Any) -> Any:
        with opened(spec, args, kwargs, flowml_context) as outcome:
            outcome.result = fn(*args, **kwargs)
        return outcome.result

    return rebind(wrapper, fn, _task_signature(fn))


def with_context(kwargs: dict[str, Any], *, mapped: bool = False) -> dict[str, Any]:
    if CONTEXT_PARAMETER in kwargs:  # set explicitly (a sweep tags its trials this way)
        return kwargs
    ctx = capture()
    if mapped:
        from prefect.utilities.annotations import unmapped

        return {**kwargs, CONTEXT_PARAMETER: unmapped(ctx)}
    return {**kwargs, CONTEXT_PARAMETER: ctx}
