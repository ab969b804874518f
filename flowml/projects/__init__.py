"""MLflow Projects on Prefect: ``flowml.projects.run(uri, entry_point, parameters)``.

A project (a directory or git URI with an ``MLproject`` file, or just ``.py``/``.sh`` files) is compiled
into a
Prefect flow (:mod:`flowml.projects.compile`) and run; its tracking run gets the params, the MLflow project
tags and the Prefect flow run id. See :mod:`flowml.projects.spec` for the file format.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowml.projects.spec import ExecutionError, Project, ProjectSpecError, load_project

__all__ = [
    "ExecutionError",
    "Project",
    "ProjectSpecError",
    "SubmittedRun",
    "load_project",
    "prepare",
    "run",
]


@dataclass
class SubmittedRun:
    """A project run: the tracking ``run_id``, the Prefect ``flow_run_id`` and, once done, the outcome."""

    run_id: str | None = None
    flow_run_id: str | None = None
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    _started: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def _created(self, run_id: str, flow_run_id: str | None) -> None:
        self.run_id, self.flow_run_id = run_id, flow_run_id
        self._started.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends; True if it FINISHED."""
        self._done.wait(timeout)
        return self._done.is_set() and self.error is None

    def wait_started(self, timeout: float | None = None) -> str | None:
        """Block until the tracking run exists (or the run failed before creating it); its id."""
        self._started.wait(timeout)
        return self.run_id

    def get_status(self) -> str:
        """The tracking run's status (``RUNNING``, ``FINISHED``, ``FAILED``, ``KILLED``)."""
        if self.run_id is None:
            return "FAILED" if self._done.is_set() else "SCHEDULED"
        from flowml.client import FlowmlClient

        return str(FlowmlClient().get_run(self.run_id).info.status)

    @property
    def status(self) -> str:
        return self.get_status()


def prepare(
    uri: str,
    entry_point: str = "main",
    parameters: Mapping[str, Any] | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    env_manager: str = "local",
    version: str | None = None,
    *,
    build_environment: bool = True,
    on_run_created: Callable[[str, str | None], None] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Fetch, validate and compile a project: the Prefect flow and its typed keyword arguments.

    Every check (the MLproject file, the entry point, missing/ill-typed parameters, the environment) happens
    here, before any tracking run or flow run exists.
    """
    from flowml.projects.compile import ProjectRunConfig, compile_project, flow_parameter_name
    from flowml.projects.env import prepare_environment
    from flowml.projects.git import fetch_project
    from flowml.projects.spec import resolve_parameters

    source = fetch_project(uri, version)
    project = load_project(source.directory)
    values = dict(parameters or {})
    specs = project.parameters_for(entry_point)
    declared, extra = resolve_parameters(specs, values, project.directory)
    environment = prepare_environment(project, env_manager) if build_environment else None
    config = ProjectRunConfig(
        project=project,
        source=source,
        entry_point=entry_point,
        env_manager=env_manager,
        experiment_name=experiment_name,
        experiment_id=experiment_id,
        extra_parameters=extra,
        environment=environment,
        on_run_created=on_run_created,
    )
    return compile_project(config), {flow_parameter_name(k): v for k, v in declared.items()}


def run(
    uri: str,
    entry_point: str = "main",
    parameters: Mapping[str, Any] | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    env_manager: str = "local",
    synchronous: bool = True,
    version: str | None = None,
) -> SubmittedRun:
    """Run a project's entry point as a Prefect flow; MLflow's ``mlflow.projects.run`` signature.

    ``synchronous=True`` returns when the flow has ended and raises :class:`ExecutionError` if it failed;
    ``synchronous=False`` returns at once (``SubmittedRun.wait()`` / ``.get_status()``).
    """
    submitted = SubmittedRun()
    flow, kwargs = prepare(
        uri,
        entry_point,
        parameters,
        experiment_name,
        experiment_id,
        env_manager,
        version,
        on_run_created=submitted._created,
    )

    def target() -> None:
        try:
            submitted.result = flow(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller (re-raised when synchronous)
            submitted.error = exc
        finally:
            submitted._started.set()
            submitted._done.set()

    if not synchronous:
        context = contextvars.copy_context()  # Prefect settings contexts live in context variables
        threading.Thread(
            target=context.run, args=(target,), name=f"flowml-project-{flow.name}", daemon=True
        ).start()
        submitted.wait_started()
        return submitted
    target()
    if submitted.error is not None:
        if isinstance(submitted.error, ExecutionError | ProjectSpecError):
            raise submitted.error
        if isinstance(submitted.error, Exception):
            raise ExecutionError(
                f"Project run {submitted.run_id} failed: {submitted.error}"
            ) from submitted.error
        raise submitted.error
    return submitted
