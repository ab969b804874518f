"""Compile an MLproject entry point (or its ``flowml.steps`` DAG) into a Prefect flow.

The flow's parameters are the entry point's typed parameters (``int`` -> ``int``, ``float`` -> ``float``, the
rest ``str``), so Prefect validates them and the UI shows a form. A run of the flow:

1. converts and checks the values (``path`` absolute and existing, ``uri`` with a scheme);
2. creates the tracking run (params logged; tags ``mlflow.source.*``, ``mlflow.project.*``,
   ``flowml.prefect.flow_run_id`` / ``flowml.prefect.flow_run_url``);
3. runs each entry point / step as a Prefect task: the command in a subprocess whose output streams to
   the Prefect logger, with ``FLOWML_RUN_ID`` / ``MLFLOW_RUN_ID`` ... in its environment; a DAG gets one
   child run per step (``mlflow.parentRunId``), steps run as soon as their ``depends_on`` finished;
4. ends the tracking run FINISHED, FAILED (an error) or KILLED (cancellation / interrupt); state hooks cover a
   flow run killed from outside (the runner's cancellation, a crash).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowml.entities import RunStatus
from flowml.projects import _execute as ex
from flowml.projects.env import Environment, prepare_environment
from flowml.projects.git import ProjectSource
from flowml.projects.spec import Project, ProjectSpecError, resolve_parameters

if TYPE_CHECKING:
    from prefect import Flow

__all__ = ["ProjectRunConfig", "compile_project", "flow_name_for", "flow_parameter_name"]

#: Called with (tracking run id, flow run id or None) as soon as the tracking run exists.
RunCreated = Callable[[str, str | None], None]


@dataclass(frozen=True)
class ProjectRunConfig:
    """Everything a compiled flow needs besides its parameters."""

    project: Project
    source: ProjectSource
    entry_point: str = "main"
    env_manager: str = "local"
    experiment_name: str | None = None
    experiment_id: str | None = None
    #: Parameters not declared by the entry point (appended as ``--key value``); fixed at compile time.
    extra_parameters: Mapping[str, str] = field(default_factory=dict)
    #: A prepared environment (``flowml run`` builds it before the flow starts); else built in the flow.
    environment: Environment | None = None
    on_run_created: RunCreated | None = None


def flow_name_for(project: Project, entry_point: str) -> str:
    name = re.sub(r"[^\w.\-]+", "-", f"{project.name}-{entry_point.removesuffix('.py').removesuffix('.sh')}")
    return name.strip("-") or "project"


def flow_parameter_name(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    return f"p_{ident}" if not ident.isidentifier() else ident


def _signature(config: ProjectRunConfig) -> tuple[inspect.Signature, dict[str, str]]:
    """The flow function's signature and a map flow-parameter name -> MLproject parameter name."""
    params: list[inspect.Parameter] = []
    names: dict[str, str] = {}
    specs = config.project.parameters_for(config.entry_point)
    for name, spec in sorted(specs.items(), key=lambda kv: kv[1].default is not None):
        ident = flow_parameter_name(name)
        if ident in names:
            raise ProjectSpecError(f"parameters {names[ident]!r} and {name!r} map to the same flow parameter")
        names[ident] = name
        default: Any = inspect.Parameter.empty
        if spec.default is not None:
            default = (
                spec.convert(spec.default, check_paths=False)
                if spec.type in ("int", "float")
                else str(spec.default)
            )
        params.append(
            inspect.Parameter(
                ident, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=spec.python_type
            )
        )
    return inspect.Signature(params), names


def _execute(config: ProjectRunConfig, values: Mapping[str, Any]) -> dict[str, Any]:
    from prefect import get_run_logger

    from flowml.client import FlowmlClient

    project = config.project
    pipeline = project.is_pipeline(config.entry_point)
    specs = project.parameters_for(config.entry_point)
    declared, extra = resolve_parameters(specs, {**config.extra_parameters, **values}, project.directory)
    client = FlowmlClient()
    experiment_id = ex.experiment_id_for(client, config.experiment_name, config.experiment_id)
    flow_tags = ex.flow_run_facts()
    env_kind = config.environment.kind if config.environment else _env_tag(project, config.env_manager)
    tags = {
        **config.source.source_tags(),
        "mlflow.source.type": "PROJECT",
        "mlflow.project.entryPoint": config.entry_point,
        "mlflow.project.env": env_kind,
        "mlflow.project.backend": "prefect",
        **flow_tags,
    }
    run_id = ex.create_tracking_run(client, experiment_id, tags, {**declared, **extra})
    if config.on_run_created is not None:
        config.on_run_created(run_id, flow_tags.get(ex.FLOW_RUN_ID_TAG))
    logger = get_run_logger()
    logger.info("Tracking run %s (experiment %s)", run_id, experiment_id)
    status = RunStatus.FAILED
    try:
        environment = config.environment or prepare_environment(
            project, config.env_manager, ex.tracking_env(client, run_id, experiment_id)
        )
        if pipeline:
            steps = _run_pipeline(config, environment, client, run_id, experiment_id, declared, tags)
        else:
            entry = project.get_entry_point(config.entry_point)
            task = _make_task(config.entry_point, config, environment)
            steps = {
                config.entry_point: task(
                    entry.render(declared, extra), ex.tracking_env(client, run_id, experiment_id), run_id
                )
            }
        status = RunStatus.FINISHED
        return {"run_id": run_id, "experiment_id": experiment_id, "steps": steps}
    except Exception:
        status = RunStatus.FAILED
        raise
    except BaseException:  # cancellation (TerminationSignal), KeyboardInterrupt
        status = RunStatus.KILLED
        raise
    finally:
        client.set_terminated(run_id, status)


def _env_tag(project: Project, env_manager: str) -> str:
    return "docker" if project.docker_env is not None else env_manager


def _make_task(name: str, config: ProjectRunConfig, environment: Environment) -> Any:
    """One Prefect task running one command (no result caching: every task comes from this closure)."""
    from prefect import Task, get_run_logger
    from prefect.cache_policies import NO_CACHE

    def run_entry_point(command: str, env: dict[str, str], run_id: str) -> dict[str, Any]:
        outputs = ex.run_command(command, environment, config.project.directory, env, get_run_logger())
        return {"run_id": run_id, "outputs": outputs}

    run_entry_point.__name__ = run_entry_point.__qualname__ = flow_parameter_name(name)
    return Task(run_entry_point, name=name, cache_policy=NO_CACHE, persist_result=False)


def _make_step_task(
    step_name: str,
    config: ProjectRunConfig,
    environment: Environment,
    parent: dict[str, Any],
) -> Any:
    """A DAG step: renders its parameters from the pipeline values and upstream results, then runs in a
    child run."""
    from prefect import Task, get_run_logger
    from prefect.cache_policies import NO_CACHE
    from prefect.context import TaskRunContext

    from flowml.client import FlowmlClient

    project = config.project
    assert project.flowml is not None
    step = project.flowml.steps[step_name]
    entry = project.get_entry_point(step.entry_point)

    def run_step(upstream: dict[str, dict[str, Any]]) -> dict[str, Any]:
        pipeline_values: dict[str, Any] = parent["values"]
        rendered = step.render_parameters(pipeline_values, upstream)
        inherited = {k: v for k, v in pipeline_values.items() if k in entry.parameters and k not in rendered}
        declared, extra = entry.resolve({**inherited, **rendered}, project.directory)
        client = FlowmlClient()
        ctx = TaskRunContext.get()
        tags = {
            **parent["tags"],
            "mlflow.parentRunId": parent["run_id"],
            "mlflow.project.entryPoint": step.entry_point,
            ex.STEP_TAG: step_name,
        }
        if ctx is not None:
            tags["flowml.prefect.task_run_id"] = str(ctx.task_run.id)
        run_id = ex.create_tracking_run(
            client, parent["experiment_id"], tags, {**declared, **extra}, step_name
        )
        status = RunStatus.FAILED
        try:
            env = ex.tracking_env(client, run_id, parent["experiment_id"])
            outputs = ex.run_command(
                entry.render(declared, extra), environment, project.directory, env, get_run_logger()
            )
            status = RunStatus.FINISHED
            return {"run_id": run_id, "outputs": outputs}
        except Exception:
            raise
        except BaseException:
            status = RunStatus.KILLED
            raise
        finally:
            client.set_terminated(run_id, status)

    run_step.__name__ = run_step.__qualname__ = flow_parameter_name(step_name)
    return Task(run_step, name=step_name, cache_policy=NO_CACHE, persist_result=False)


def _run_pipeline(
    config: ProjectRunConfig,
    environment: Environment,
    client: Any,
    run_id: str,
    experiment_id: str,
    values: dict[str, Any],
    tags: dict[str, str],
) -> dict[str, Any]:
    from prefect.futures import wait

    section = config.project.flowml
    assert section is not None
    parent = {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "values": values,
        "tags": {k: v for k, v in tags.items() if k != "mlflow.project.entryPoint"},
    }
    futures: dict[str, Any] = {}
    for name in section.order():
        task = _make_step_task(name, config, environment, parent)
        upstream = {dep: futures[dep] for dep in section.ancestors(name)}
        futures[name] = task.submit(upstream)
    wait(list(futures.values()))
    return {name: futures[name].result() for name in section.order()}


def compile_project(
    config: ProjectRunConfig, *, attr_name: str | None = None, module_name: str | None = None
) -> Flow[..., dict[str, Any]]:
    """The project's entry point (or DAG) as a Prefect ``Flow``.

    ``module_name`` / ``attr_name`` make the flow's function look like ``module_name.attr_name`` so a
    deployment
    with a MODULE_PATH entrypoint can import it (see :mod:`flowml.projects.deployed`).
    """
    from prefect import Flow

    if not config.project.is_pipeline(config.entry_point):
        config.project.get_entry_point(config.entry_point)  # unknown entry point: fail now
    signature, names = _signature(config)

    def project_flow(**kwargs: Any) -> dict[str, Any]:
        return _execute(config, {names[k]: v for k, v in kwargs.items()})

    project_flow.__signature__ = signature  # type: ignore[attr-defined]
    ident = attr_name or flow_parameter_name(flow_name_for(config.project, config.entry_point))
    project_flow.__name__ = project_flow.__qualname__ = ident
    if module_name:
        project_flow.__module__ = module_name
    description = (
        f"MLproject {config.project.name!r}, entry point {config.entry_point!r} ({config.source.uri})"
    )
    return Flow(
        project_flow,
        name=flow_name_for(config.project, config.entry_point),
        description=description,
        validate_parameters=True,
        persist_result=False,
        on_cancellation=[ex.state_hook(RunStatus.KILLED)],
        on_crashed=[ex.state_hook(RunStatus.FAILED)],
    )
