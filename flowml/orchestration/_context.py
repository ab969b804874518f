"""The tracking context that crosses from a flow into its task runs, by value.

A :class:`TrackingContext` names the run a task logs under (``run_id``) and where that run lives (tracking
URI, artifact root, S3 endpoint). ``FlowmlTask.submit/map/__call__`` capture it in the caller and pass it to
the task as an ordinary keyword argument (``flowml_context``), so it is pickled with the other inputs and
reaches thread, process and Dask workers alike; nothing is read from process-local state on the worker side.

The fluent API inside a task logs to the run its wrapper opened, because the wrapper pushes that run (with a
client built from the context) onto the fluent run stack of the worker's context.
"""

from __future__ import annotations

import contextvars
import enum
import numbers
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any

from flowml.client import FlowmlClient
from flowml.client._factory import BackendCache
from flowml.entities import Metric, Param, Run, RunStatus, RunTag
from flowml.settings import get_settings
from flowml.tracking import fluent
from flowml.validation import MAX_BATCH_PARAMS, MAX_PARAM_VALUE_LENGTH

__all__ = [
    "CONTEXT_PARAMETER",
    "TrackingContext",
    "activated",
    "batches",
    "capture",
    "clear_client_cache",
    "current_context",
    "metrics_from",
    "now_ms",
    "scalar_params",
]

#: The keyword argument a ``FlowmlTask`` adds to its function's signature to receive the context.
CONTEXT_PARAMETER = "flowml_context"

#: Backends for contexts whose store differs from this process's settings (a remote Dask worker).
_BACKENDS = BackendCache()

#: The context each open ActiveRun was activated with (so nested tasks inherit the artifact root too).
_ACTIVE_CONTEXT: contextvars.ContextVar[TrackingContext | None] = contextvars.ContextVar(
    "flowml_orchestration_context", default=None
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class TrackingContext:
    """Where a task run logs: under ``run_id`` (experiment ``experiment_id``) in the store at
    ``tracking_uri``.

    ``tags`` are added to child runs opened under this context (a sweep marks its trials this way).
    """

    run_id: str
    experiment_id: str
    tracking_uri: str
    artifact_root: str
    s3_endpoint_url: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    def client(self) -> FlowmlClient:
        """A client for this context's store (shared backends; no I/O until used)."""
        settings = get_settings()
        here = (settings.tracking_uri, settings.artifact_root, settings.s3_endpoint_url)
        if (self.tracking_uri, self.artifact_root, self.s3_endpoint_url) == here:
            return FlowmlClient()
        backend = _BACKENDS.get(
            self.tracking_uri, self.artifact_root, self.s3_endpoint_url, settings.sqlite_busy_timeout_ms
        )
        return FlowmlClient(self.tracking_uri, backend=backend)

    def with_tags(self, tags: Mapping[str, Any]) -> TrackingContext:
        return replace(self, tags=(*self.tags, *((str(k), str(v)) for k, v in tags.items())))

    def under(self, run_id: str, experiment_id: str) -> TrackingContext:
        """The same store, nesting under another run (the extra tags are not inherited)."""
        return replace(self, run_id=run_id, experiment_id=experiment_id, tags=())


def clear_client_cache() -> None:
    """Close the backends opened for foreign stores (tests)."""
    _BACKENDS.clear()


def capture() -> TrackingContext | None:
    """The context of this thread's / task's active run, or None when no run is active."""
    active = fluent.active_run()
    if active is None:
        return None
    ctx = _ACTIVE_CONTEXT.get()
    if ctx is not None and ctx.run_id == active.run_id:
        return replace(ctx, tags=())
    settings = get_settings()
    return TrackingContext(
        run_id=active.run_id,
        experiment_id=active.info.experiment_id,
        tracking_uri=active.client.tracking_uri,
        artifact_root=settings.artifact_root,
        s3_endpoint_url=settings.s3_endpoint_url,
    )


def current_context() -> TrackingContext | None:
    """Public alias of :func:`capture`: pass it to code that must log under the active run elsewhere."""
    return capture()


@contextmanager
def activated(
    run: Run, client: FlowmlClient, ctx: TrackingContext, *, owned: bool
) -> Iterator[fluent.ActiveRun]:
    """Make ``run`` the fluent active run of this context for the block.

    On exit the run's buffered metrics are flushed and runs the block left open inside it are ended (their
    status follows the block's outcome); ``run`` itself is never terminated here: the caller owns its status.
    """
    active = fluent.ActiveRun(run, client, owned=owned)
    stack_token = fluent._active_runs.set((*fluent._active_runs.get(), active))
    ctx_token = _ACTIVE_CONTEXT.set(ctx)
    status = RunStatus.FINISHED
    try:
        yield active
    except Exception:
        status = RunStatus.FAILED
        raise
    except BaseException:
        status = RunStatus.KILLED
        raise
    finally:
        stack = fluent._active_runs.get()
        inner = stack[stack.index(active) + 1 :] if active in stack else ()
        fluent._active_runs.reset(stack_token)
        _ACTIVE_CONTEXT.reset(ctx_token)
        try:
            for run_left_open in reversed(inner):
                fluent._finish(run_left_open, status)
        finally:
            if active.buffer is not None:
                active.buffer.close()


_SCALARS = (str, bool, numbers.Number, enum.Enum, PurePath)


def scalar_params(values: Mapping[str, Any]) -> list[Param]:
    """Params for the scalar values (str, numbers, bool, enums, paths; None is skipped); truncated to the
    limit."""
    params = []
    for key, value in values.items():
        if key == CONTEXT_PARAMETER or not isinstance(value, _SCALARS):
            continue
        text = value.value if isinstance(value, enum.Enum) else value
        params.append(Param(str(key), str(text)[:MAX_PARAM_VALUE_LENGTH]))
    return params


def metrics_from(result: Any, timestamp: int, prefix: str = "") -> list[Metric]:
    """Metrics for the real numbers of a returned mapping (bools and non-finite keys are skipped)."""
    if not isinstance(result, Mapping):
        return []
    return [
        Metric(f"{prefix}{key}", float(value), timestamp, 0)
        for key, value in result.items()
        if isinstance(key, str) and isinstance(value, numbers.Real) and not isinstance(value, bool)
    ]


def batches(
    client: FlowmlClient,
    run_id: str,
    *,
    params: Sequence[Param] = (),
    metrics: Sequence[Metric] = (),
    tags: Sequence[RunTag] = (),
) -> None:
    """``log_batch`` in chunks within the store's per-request limits (at most 1000 values per call)."""
    params, metrics, tags = list(params), list(metrics), list(tags)
    while params or metrics or tags:
        client.log_batch(run_id, metrics=metrics[:800], params=params[:MAX_BATCH_PARAMS], tags=tags[:100])
        params, metrics, tags = params[MAX_BATCH_PARAMS:], metrics[800:], tags[100:]
