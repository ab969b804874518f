"""MLflow's fluent tracking API (``mlflow.start_run``, ``mlflow.log_metric``...) over FlowmlClient.

State: the stack of active runs lives in a :class:`contextvars.ContextVar` (each thread and each
asyncio task sees its own); the tracking URI and the active experiment are process-wide
configuration kept where MLflow keeps them, in the environment (``FLOWML_TRACKING_URI``,
``FLOWML_EXPERIMENT_ID``), so subprocesses inherit them.
"""

from __future__ import annotations

import atexit
import contextvars
import os
import sys
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from flowml.client import FlowmlClient, clear_backend_cache
from flowml.entities import Experiment, Metric, Param, Run, RunStatus, RunTag
from flowml.exceptions import FlowmlError, InvalidParameterValue
from flowml.settings import get_settings
from flowml.tracking import model_metrics
from flowml.tracking._buffer import MetricBuffer
from flowml.validation import validate_metric

__all__ = [
    "ActiveRun",
    "active_run",
    "create_experiment",
    "delete_tag",
    "end_run",
    "flush",
    "get_experiment",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_experiment",
    "set_experiment_tag",
    "set_experiment_tags",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]

_EXPERIMENT_ID_ENV = "FLOWML_EXPERIMENT_ID"
_EXPERIMENT_NAME_ENV = "FLOWML_EXPERIMENT_NAME"
_RUN_ID_ENVS = ("FLOWML_RUN_ID", "MLFLOW_RUN_ID")

_active_runs: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar(
    "flowml_active_runs", default=()
)
_last_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("flowml_last_run_id", default=None)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- configuration -----------------------------------------------------------------------------
def _store_uri(uri: str, what: str) -> str:
    if not uri:
        raise InvalidParameterValue(f"{what} URI must be a non-empty string")
    if "://" not in uri and not uri.startswith(("sqlite:", "postgresql")):
        uri = f"sqlite:///{os.path.abspath(uri)}"  # a bare path means a SQLite file
    return uri


def set_tracking_uri(uri: str) -> None:
    """Point the fluent API (and new clients and subprocesses) at ``uri``."""
    os.environ["FLOWML_TRACKING_URI"] = _store_uri(uri, "Tracking")
    get_settings.cache_clear()


def get_tracking_uri() -> str:
    return get_settings().tracking_uri


def set_registry_uri(uri: str) -> None:
    """MLflow's ``set_registry_uri``. flowml keeps the registry in the tracking store, so registering
    a model while this names another store is refused (``register_model``); naming the tracking
    store, before or after ``set_tracking_uri``, is fine."""
    os.environ["FLOWML_REGISTRY_URI"] = _store_uri(uri, "Registry")
    get_settings.cache_clear()


def get_registry_uri() -> str:
    """The registry's URI: the one set, else the tracking URI (where the registry is)."""
    settings = get_settings()
    return settings.registry_uri or settings.tracking_uri


def _client() -> FlowmlClient:
    return FlowmlClient()


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Make an experiment active for new runs; create it (by name) if it does not exist."""
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidParameterValue("Must specify exactly one of: `experiment_id` or `experiment_name`.")
    client = _client()
    if experiment_id is not None:
        experiment = client.get_experiment(str(experiment_id))
    else:
        assert experiment_name is not None
        found = client.get_experiment_by_name(experiment_name)
        if found is None:
            try:
                new_id = client.create_experiment(experiment_name)
            except FlowmlError as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":  # lost a race: use theirs
                    raise
                found = client.get_experiment_by_name(experiment_name)
                assert found is not None
                new_id = found.experiment_id
            experiment = client.get_experiment(new_id)
        else:
            experiment = found
    if experiment.lifecycle_stage != "active":
        raise InvalidParameterValue(
            f"Cannot set a deleted experiment {experiment.name!r} as the active experiment. "
            "You can restore the experiment, or permanently delete the experiment to create a new "
            "one."
        )
    os.environ[_EXPERIMENT_ID_ENV] = experiment.experiment_id
    return experiment


def _active_experiment_id(client: FlowmlClient) -> str:
    if experiment_id := os.environ.get(_EXPERIMENT_ID_ENV) or os.environ.get("MLFLOW_EXPERIMENT_ID"):
        return experiment_id
    if name := os.environ.get(_EXPERIMENT_NAME_ENV) or os.environ.get("MLFLOW_EXPERIMENT_NAME"):
        return set_experiment(name).experiment_id
    return "0"


def create_experiment(
    name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
) -> str:
    return _client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    return _client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return _client().get_experiment_by_name(name)


def get_run(run_id: str) -> Run:
    return _client().get_run(run_id)


# -- runs --------------------------------------------------------------------------------------
class ActiveRun:
    """The run a ``start_run`` opened; a context manager that ends it (FAILED on an exception)."""

    def __init__(self, run: Run, client: FlowmlClient, *, owned: bool = True) -> None:
        self._run = run
        self.client = client
        settings = get_settings()
        self.buffer: MetricBuffer | None = (
            MetricBuffer(
                self._write_metrics,
                max_pending=settings.log_buffer_size,
                interval_s=settings.log_flush_interval_s,
            )
            if settings.async_logging
            else None
        )
        self._owned = owned
        self._model_outputs: dict[int, list[str]] = {}  # step -> models this process logged as outputs

    def record_model_output(self, model_id: str, step: int) -> None:
        """``log_model`` logged ``model_id`` as this run's output at ``step``: later points at that
        step are the model's metrics too (MLflow 3)."""
        self._model_outputs.setdefault(step, []).append(model_id)

    def model_outputs_at(self, step: int) -> list[str]:
        outputs = self._model_outputs
        return list(outputs.get(step, ())) if outputs else []

    def _write_metrics(self, points: Any) -> None:
        self.client.log_batch(self.run_id, metrics=points)

    @property
    def info(self) -> Any:
        return self._run.info

    @property
    def data(self) -> Any:
        return self.client.get_run(self.run_id).data

    @property
    def run_id(self) -> str:
        return self._run.info.run_id

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is KeyboardInterrupt:
            status = RunStatus.KILLED
        elif exc_type is not None:
            status = RunStatus.FAILED
        else:
            status = RunStatus.FINISHED
        _end(self, status)

    def __repr__(self) -> str:
        return f"<ActiveRun: run_id={self.run_id}, run_name={self.info.run_name}>"


def _default_tags() -> dict[str, str]:
    source = sys.argv[0] if sys.argv and sys.argv[0] else "<console>"  # as given, as MLflow records it
    return {"mlflow.source.name": source, "mlflow.source.type": "LOCAL"}


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a new run (or resume ``run_id``) and make it the active run of this context."""
    stack = _active_runs.get()
    if stack and not nested:
        raise FlowmlError(
            f"Run with UUID {stack[-1].run_id} is already active. To start a new run, first end the "
            "current run with flowml.end_run(). To start a nested run, call start_run with "
            "nested=True",
            error_code="INVALID_PARAMETER_VALUE",
        )
    client = _client()
    run_id = run_id or next((os.environ[e] for e in _RUN_ID_ENVS if os.environ.get(e)), None)
    if run_id:
        run = client.get_run(run_id)
        if run.info.lifecycle_stage != "active":
            raise InvalidParameterValue(f"Cannot start run with ID {run_id} because it is deleted")
        client.update_run(run_id, status=RunStatus.RUNNING)
        run = client.get_run(run_id)
    else:
        all_tags = _default_tags()
        parent = parent_run_id or (stack[-1].run_id if stack else None)
        if parent:
            all_tags["mlflow.parentRunId"] = parent
        if description:
            all_tags["mlflow.note.content"] = description
        all_tags.update({k: str(v) for k, v in (tags or {}).items()})
        exp_id = str(experiment_id) if experiment_id is not None else _active_experiment_id(client)
        run = client.create_run(exp_id, tags=all_tags, run_name=run_name)
    active = ActiveRun(run, client)
    _active_runs.set((*stack, active))
    if not stack:
        atexit.register(_end_at_exit, active)
    return active


def _end(active: ActiveRun, status: str) -> None:
    stack = _active_runs.get()
    # Ending a run ends the runs nested inside it too.
    if active in stack:
        for inner in reversed(stack[stack.index(active) + 1 :]):
            _finish(inner, status)
        _active_runs.set(stack[: stack.index(active)])
        if stack.index(active) == 0:
            atexit.unregister(_end_at_exit)
    _finish(active, status)


def _finish(active: ActiveRun, status: str) -> None:
    try:
        if active.buffer is not None:
            active.buffer.close()
    finally:
        active.client.set_terminated(active.run_id, status, _now_ms())
        _last_run_id.set(active.run_id)


def _end_at_exit(active: ActiveRun) -> None:
    status = RunStatus.FAILED if getattr(sys, "last_type", None) else RunStatus.FINISHED
    try:
        _end(active, status)
    except Exception:
        import logging

        logging.getLogger(__name__).exception("flowml: could not end run %s at exit", active.run_id)


def end_run(status: str = RunStatus.FINISHED) -> None:
    """End the active run (and flush its buffered metrics)."""
    stack = _active_runs.get()
    if stack:
        _end(stack[-1], RunStatus.from_string(status))


def active_run() -> ActiveRun | None:
    stack = _active_runs.get()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    current = active_run()
    if current is not None:
        return current.client.get_run(current.run_id)
    run_id = _last_run_id.get()
    return _client().get_run(run_id) if run_id else None


def _get_or_start_run() -> ActiveRun:
    return active_run() or start_run()


def _target(run_id: str | None) -> tuple[ActiveRun | None, str, FlowmlClient]:
    """The buffer-owning active run (if logging to it) and the run id and client to log to."""
    active = _get_or_start_run() if run_id is None else active_run()
    if active is not None and (run_id is None or run_id == active.run_id):
        return active, active.run_id, active.client
    assert run_id is not None
    return None, run_id, _client()


def flush() -> None:
    """Write every buffered metric of this context's active runs now."""
    for active in _active_runs.get():
        if active.buffer is not None:
            active.buffer.flush()


# -- logging -----------------------------------------------------------------------------------
def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    model_id: str | None = None,
    dataset: Any = None,
) -> None:
    """Log a metric point to the active run (or ``run_id``); with a logged model (``model_id``, the
    active model, or a model this run logged at ``step``) also as that model's metric, measured on
    ``dataset`` (:mod:`flowml.tracking.model_metrics`)."""
    ts = timestamp if timestamp is not None else _now_ms()
    validate_metric(key, value, ts, step or 0)
    active, rid, client = _target(run_id)
    point = Metric(key, value, ts, step or 0)
    models = model_metrics.metric_model_ids(model_id, active, rid, step or 0)
    if models:
        model_metrics.log_model_points(client, rid, [point], models, dataset)
    elif active is not None and active.buffer is not None and not synchronous:
        active.buffer.add((point,))
    else:
        client.log_batch(rid, metrics=[point])


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
    model_id: str | None = None,
    dataset: Any = None,
) -> None:
    """Several metric points at one step; ``model_id`` / ``dataset`` as in :func:`log_metric`."""
    ts = timestamp if timestamp is not None else _now_ms()
    points = [Metric(k, v, ts, step or 0) for k, v in metrics.items()]
    for point in points:
        validate_metric(point.key, point.value, ts, point.step)
    active, rid, client = _target(run_id)
    models = model_metrics.metric_model_ids(model_id, active, rid, step or 0)
    if models and points:
        model_metrics.log_model_points(client, rid, points, models, dataset)
    elif active is not None and active.buffer is not None and not synchronous:
        active.buffer.add(points)
    else:
        for i in range(0, len(points), 1000):
            client.log_batch(rid, metrics=points[i : i + 1000])


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    _, rid, client = _target(None)
    return client.log_param(rid, key, value)


def log_params(params: Mapping[str, Any], synchronous: bool | None = None, run_id: str | None = None) -> None:
    _, rid, client = _target(run_id)
    items = [Param(k, str(v)) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(rid, params=items[i : i + 100])


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    _, rid, client = _target(None)
    client.set_tag(rid, key, value)


def set_tags(tags: Mapping[str, Any], synchronous: bool | None = None) -> None:
    _, rid, client = _target(None)
    items = [RunTag(k, str(v)) for k, v in tags.items()]
    for i in range(0, len(items), 100):
        client.log_batch(rid, tags=items[i : i + 100])


def delete_tag(key: str) -> None:
    _, rid, client = _target(None)
    client.delete_tag(rid, key)


def set_experiment_tag(key: str, value: Any) -> None:
    client = _client()
    client.set_experiment_tag(_active_experiment_id(client), key, value)


def set_experiment_tags(tags: Mapping[str, Any]) -> None:
    for key, value in tags.items():
        set_experiment_tag(key, value)


def _reset_for_tests() -> None:
    """End nothing, forget everything: used between tests that switch stores."""
    from flowml.tracking import logged_models

    _active_runs.set(())
    _last_run_id.set(None)
    logged_models._reset_for_tests()
    clear_backend_cache()
    get_settings.cache_clear()
