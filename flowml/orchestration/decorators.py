"""``@flowml.flow`` and ``@flowml.task``: Prefect's decorators with tracking.

``@flowml.flow(experiment=..., log_params=True, **prefect_flow_kwargs)`` returns a real ``prefect.Flow``. Each
flow run opens a tracking run (named after the flow run; nested under the caller's active run, e.g. for a
subflow), logs the flow's parameters, tags it with the flow run's id, name and UI URL, and is the fluent
active run inside the flow. State hooks set FINISHED / FAILED / KILLED from the final state (:mod:`._hooks`).

``@flowml.task(log="child"|"parent", log_outputs=False, **prefect_task_kwargs)`` returns a
:class:`FlowmlTask`, a ``prefect.Task`` whose calls (``task(...)``, ``.submit``, ``.map``, ``.delay``) capture
the caller's tracking context and hand it to the task run as the ``flowml_context`` keyword argument, so it
reaches thread, process and Dask workers by value. ``log="child"`` opens one nested run per task run *attempt*
(params = scalar inputs, ``duration_s`` metric, status, tags ``flowml.prefect.task_run_*`` and
``flowml.prefect.attempt``); ``log="parent"`` logs into the caller's run instead. With ``log_outputs=True``
the real numbers of a returned dict are logged as metrics. A task called outside any flow and outside any
active run logs to a standalone run in the active experiment (tag ``flowml.orchestration.standalone``).

``task.fn`` is the tracking wrapper (what Prefect calls); the undecorated function is ``task.fn.__wrapped__``.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from prefect import Flow, Task
from typing_extensions import ParamSpec

from flowml.client import FlowmlClient
from flowml.entities import Param, RunStatus
from flowml.orchestration import _hooks
from flowml.orchestration._context import TrackingContext, activated, batches, capture, scalar_params
from flowml.orchestration._task_runs import (
    LogMode,
    TaskSpec,
    bound_arguments,
    make_task_fn,
    rebind,
    with_context,
)
from flowml.settings import get_settings
from flowml.validation import MAX_PARAM_VALUE_LENGTH

__all__ = ["FlowmlTask", "flow", "task"]

P = ParamSpec("P")
R = TypeVar("R")


# -- shared ------------------------------------------------------------------------------------------
def _check_function(fn: object, decorator: str) -> None:
    if isinstance(fn, (Flow, Task)):
        kind = "flow" if isinstance(fn, Flow) else "task"
        raise TypeError(
            f"@flowml.{decorator} must decorate a plain function, not a Prefect {kind} ({fn.name!r}): "
            f"replace @prefect.{kind} with @flowml.{decorator} instead of stacking them"
        )
    if not callable(fn):
        raise TypeError(
            f"@flowml.{decorator} got {fn!r} where a function was expected; pass options by keyword, "
            f"e.g. @flowml.{decorator}(name='...')"
        )
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(f"@flowml.{decorator} does not support generator functions ({fn!r})")


# -- flows -------------------------------------------------------------------------------------------
def _flow_params(values: Mapping[str, Any]) -> list[Param]:
    """All flow parameters: scalars as text, JSON-able containers as JSON; others are skipped."""
    params = scalar_params(values)
    seen = {p.key for p in params}
    for key, value in values.items():
        if key not in seen and isinstance(value, (list, tuple, dict)):
            try:
                text = json.dumps(value, default=str, sort_keys=True)
            except (TypeError, ValueError):
                continue
            params.append(Param(key, text[:MAX_PARAM_VALUE_LENGTH]))
    return params


@dataclass(frozen=True)
class _FlowSpec:
    experiment: str | None
    log_params: bool
    signature: inspect.Signature
    source: str


@contextmanager
def _flow_run(spec: _FlowSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[None]:
    from prefect.context import FlowRunContext

    from flowml.projects._execute import experiment_id_for

    prefect_ctx = FlowRunContext.get()
    flow_run = prefect_ctx.flow_run if prefect_ctx is not None else None
    parent = capture()
    client = parent.client() if parent is not None else FlowmlClient()
    if spec.experiment is None and parent is not None:
        experiment_id = parent.experiment_id
    else:
        experiment_id = experiment_id_for(client, spec.experiment, None)
    tags = {"mlflow.source.name": spec.source, "mlflow.source.type": "JOB"}
    if parent is not None:
        tags["mlflow.parentRunId"] = parent.run_id
    if prefect_ctx is not None and flow_run is not None:
        tags.update(_hooks.flow_run_tags(flow_run, getattr(prefect_ctx.flow, "name", None)))
    run = client.create_run(
        experiment_id, tags=tags, run_name=str(flow_run.name) if flow_run is not None else None
    )
    run_id = run.info.run_id
    settings = get_settings()
    ctx = (
        parent.under(run_id, experiment_id)
        if parent is not None
        else TrackingContext(
            run_id, experiment_id, client.tracking_uri, settings.artifact_root, settings.s3_endpoint_url
        )
    )
    if flow_run is not None:
        _hooks.remember(str(flow_run.id), run_id, ctx)
    try:
        if spec.log_params:
            batches(client, run_id, params=_flow_params(bound_arguments(spec.signature, args, kwargs)))
        with activated(run, client, ctx, owned=True):
            yield
    except Exception:
        # End this attempt now (a flow retry opens a new run); the on_failure hook repeats it harmlessly.
        client.set_terminated(run_id, RunStatus.FAILED)
        raise
    except BaseException:
        if flow_run is None:
            client.set_terminated(run_id, RunStatus.KILLED)
        raise  # a flow run: on_crashed / on_cancellation decide
    else:
        if flow_run is None:  # called as flow.fn(...): no engine, no hooks
            client.set_terminated(run_id, RunStatus.FINISHED)


def _make_flow_fn(fn: Callable[..., Any], spec: _FlowSpec) -> Any:
    opened = _flow_run
    if inspect.iscoroutinefunction(fn):

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with opened(spec, args, kwargs):
                return await fn(*args, **kwargs)

        return rebind(async_wrapper, fn, spec.signature)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with opened(spec, args, kwargs):
            return fn(*args, **kwargs)

    return rebind(wrapper, fn, spec.signature)


def _source_name(fn: Callable[..., Any]) -> str:
    try:
        return inspect.getsourcefile(fn) or fn.__module__
    except TypeError:
        return str(getattr(fn, "__module__", "<unknown>"))


def _build_flow(
    fn: Callable[P, R], experiment: str | None, log_params: bool, kwargs: dict[str, Any]
) -> Flow[P, R]:
    _check_function(fn, "flow")
    spec = _FlowSpec(experiment, log_params, inspect.signature(fn), _source_name(fn))
    options = dict(kwargs)
    for key, hook in _hooks.flow_hooks().items():
        options[key] = [*(options.get(key) or ()), hook]
    if "version" not in options:
        from prefect.utilities.hashing import file_hash

        with contextlib.suppress(OSError, TypeError):
            options["version"] = file_hash(spec.source)
    flow_obj: Flow[P, R] = Flow(fn=_make_flow_fn(fn, spec), **options)
    return flow_obj


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(
    *, experiment: str | None = None, log_params: bool = True, **prefect_flow_kwargs: Any
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(
    fn: Callable[P, R] | None = None,
    /,
    *,
    experiment: str | None = None,
    log_params: bool = True,
    **prefect_flow_kwargs: Any,
) -> Flow[P, R] | Callable[[Callable[P, R]], Flow[P, R]]:
    """A tracked ``prefect.flow``: bare (``@flowml.flow``) or with options (``@flowml.flow(experiment=...)``).

    ``experiment`` is an experiment name (created if missing); by default a flow nested in a tracked run uses
    that run's experiment, else the active one (``FLOWML_EXPERIMENT_NAME`` / ``_ID``, else ``Default``).
    """
    if not isinstance(log_params, bool):
        raise TypeError(f"log_params must be True or False, not {log_params!r}")
    if fn is not None:
        return _build_flow(fn, experiment, log_params, prefect_flow_kwargs)

    def decorate(func: Callable[P, R]) -> Flow[P, R]:
        return _build_flow(func, experiment, log_params, prefect_flow_kwargs)

    return decorate


# -- tasks -------------------------------------------------------------------------------------------
class FlowmlTask(Task[P, R]):
    """A ``prefect.Task`` that passes the caller's tracking context to its runs (see the module docs)."""

    flowml_log: LogMode = "child"
    flowml_log_outputs: bool = False

    if not TYPE_CHECKING:  # keep Prefect's typed signatures for users; only the keyword arguments change

        def __call__(self, *args, **kwargs):
            return super().__call__(*args, **with_context(kwargs))

        def submit(self, *args, **kwargs):
            return super().submit(*args, **with_context(kwargs))

        def map(self, *args, **kwargs):
            return super().map(*args, **with_context(kwargs, mapped=True))

        def apply_async(self, args=None, kwargs=None, *rest, **options):
            return super().apply_async(args, with_context(dict(kwargs or {})), *rest, **options)

        def with_options(self, **options):
            new = super().with_options(**options)
            new.__class__ = type(self)
            new.flowml_log, new.flowml_log_outputs = self.flowml_log, self.flowml_log_outputs
            return new


def _build_task(fn: Callable[P, R], log: str, log_outputs: bool, kwargs: dict[str, Any]) -> FlowmlTask[P, R]:
    _check_function(fn, "task")
    name = str(kwargs.get("name") or getattr(fn, "__name__", "task"))
    spec = TaskSpec(name, "parent" if log == "parent" else "child", log_outputs, inspect.signature(fn))
    built: FlowmlTask[P, R] = FlowmlTask(make_task_fn(fn, spec), **kwargs)
    built.flowml_log, built.flowml_log_outputs = spec.log, log_outputs
    return built


@overload
def task(fn: Callable[P, R], /) -> FlowmlTask[P, R]: ...


@overload
def task(
    *, log: LogMode = "child", log_outputs: bool = False, **prefect_task_kwargs: Any
) -> Callable[[Callable[P, R]], FlowmlTask[P, R]]: ...


def task(
    fn: Callable[P, R] | None = None,
    /,
    *,
    log: LogMode = "child",
    log_outputs: bool = False,
    **prefect_task_kwargs: Any,
) -> FlowmlTask[P, R] | Callable[[Callable[P, R]], FlowmlTask[P, R]]:
    """A tracked ``prefect.task``: bare (``@flowml.task``) or with options (``@flowml.task(retries=2)``)."""
    if log not in ("child", "parent"):
        raise ValueError(f"log must be 'child' (a nested run per task run) or 'parent', not {log!r}")
    if not isinstance(log_outputs, bool):
        raise TypeError(f"log_outputs must be True or False, not {log_outputs!r}")
    if fn is not None:
        return _build_task(fn, log, log_outputs, prefect_task_kwargs)

    def decorate(func: Callable[P, R]) -> FlowmlTask[P, R]:
        return _build_task(func, log, log_outputs, prefect_task_kwargs)

    return decorate
