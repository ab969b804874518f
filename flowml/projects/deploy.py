"""Register a compiled project as a Prefect deployment (``flowml project deploy``).

The deployment's entrypoint is ``flowml.projects.deployed.<key>`` (an importable module attribute); the
project
is described to the flow-run process by ``FLOWML_PROJECT__<key>`` (see :mod:`flowml.projects.deployed`),
so the
process needs flowml installed and the project URI reachable (a local path on the same host, or a git URI).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowml.projects.compile import ProjectRunConfig, compile_project, flow_parameter_name
from flowml.projects.deployed import ENV_PREFIX
from flowml.projects.git import fetch_project, is_git_uri, split_subdirectory
from flowml.projects.spec import ProjectSpecError, load_project, resolve_parameters

__all__ = ["deploy_project", "deployment_key", "flow_from_descriptor", "project_descriptor"]

_MODULE = "flowml.projects.deployed"


def deployment_key(project_name: str, deployment_name: str) -> str:
    """A Python identifier naming the deployed flow attribute (no dots or dashes)."""
    key = re.sub(r"\W+", "_", f"{project_name}__{deployment_name}").strip("_").lower()
    return key if key.isidentifier() else f"p_{key}"


def project_descriptor(
    uri: str,
    entry_point: str = "main",
    version: str | None = None,
    env_manager: str = "local",
    experiment_name: str | None = None,
    extra_parameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    if not is_git_uri(uri):
        base, sub = split_subdirectory(uri)
        base = str(Path(base.removeprefix("file://")).expanduser().resolve())
        uri = f"{base}#{sub}" if sub else base
    return {
        "uri": uri,
        "entry_point": entry_point,
        "version": version,
        "env_manager": env_manager,
        "experiment_name": experiment_name,
        "extra_parameters": dict(extra_parameters or {}),
    }


def flow_from_descriptor(descriptor: Mapping[str, Any], attr_name: str, module_name: str = _MODULE) -> Any:
    """Fetch and compile the described project as a flow importable as
    ``flowml.projects.deployed.<attr_name>``."""
    source = fetch_project(descriptor["uri"], descriptor.get("version"))
    config = ProjectRunConfig(
        project=load_project(source.directory),
        source=source,
        entry_point=descriptor.get("entry_point") or "main",
        env_manager=descriptor.get("env_manager") or "local",
        experiment_name=descriptor.get("experiment_name"),
        extra_parameters=descriptor.get("extra_parameters") or {},
    )
    return compile_project(config, attr_name=attr_name, module_name=module_name)


def _run_env(key: str, descriptor: Mapping[str, Any]) -> dict[str, str]:
    from flowml.settings import get_settings

    settings = get_settings()
    env = {
        ENV_PREFIX + key: json.dumps(descriptor),
        "FLOWML_TRACKING_URI": settings.tracking_uri,
        "FLOWML_ARTIFACT_ROOT": settings.artifact_root,
    }
    if settings.s3_endpoint_url:
        env["FLOWML_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    return env


def deploy_project(
    uri: str,
    name: str,
    *,
    entry_point: str = "main",
    parameters: Mapping[str, Any] | None = None,
    cron: str | None = None,
    interval: float | None = None,
    work_pool: str | None = None,
    version: str | None = None,
    env_manager: str = "local",
    experiment_name: str | None = None,
    serve: bool = False,
) -> str | None:
    """Register the project's flow as deployment ``name`` (validated parameters as its defaults).

    With ``work_pool`` the deployment is created for that pool (a process worker runs it) and its id returned.
    Otherwise (or with ``serve=True``) this call serves the deployment in the current process until
    interrupted.
    """
    from prefect.deployments.runner import EntrypointType  # type: ignore[attr-defined]

    if cron and interval:
        raise ProjectSpecError("give either cron or interval, not both")
    source = fetch_project(uri, version)
    project = load_project(source.directory)
    specs = project.parameters_for(entry_point)
    given = dict(parameters or {})
    declared, extra = resolve_parameters(specs, given, project.directory, check_paths=True)
    deployment_parameters = {flow_parameter_name(k): v for k, v in declared.items() if k in given}
    key = deployment_key(project.name, name)
    descriptor = project_descriptor(uri, entry_point, version, env_manager, experiment_name, extra)
    env = _run_env(key, descriptor)
    os.environ.update(env)  # this process imports (and, for serve, runs) the same flow
    flow = flow_from_descriptor(descriptor, key)
    schedule: dict[str, Any] = {"cron": cron} if cron else ({"interval": interval} if interval else {})
    common: dict[str, Any] = {
        "parameters": deployment_parameters,
        "description": f"MLproject {project.name!r} entry point {entry_point!r} from {descriptor['uri']}",
        "tags": ["flowml", "mlproject"],
        "entrypoint_type": EntrypointType.MODULE_PATH,
        **schedule,
    }
    if work_pool and not serve:
        deployment_id = flow.deploy(
            name,
            work_pool_name=work_pool,
            build=False,
            push=False,
            job_variables={"env": env},
            print_next_steps=False,
            ignore_warnings=True,
            **common,
        )
        return str(deployment_id)
    flow.serve(name=name, **common)
    return None
