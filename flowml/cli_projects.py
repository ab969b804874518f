"""``flowml run`` and ``flowml project deploy``: MLflow Projects as Prefect flows.

Registered on the main group by ``flowml/cli.py`` (``main.add_command(run)``; ``main.add_command(project)``).
"""

from __future__ import annotations

import sys
from typing import Any

import click

__all__ = ["project", "run"]


def _parse_params(values: tuple[str, ...]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="-P/--param-list")
        params[key] = value
    return params


_param_option = click.option(
    "-P",
    "--param-list",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter for the entry point (repeatable); undeclared ones are appended as --NAME VALUE.",
)
_entry_option = click.option(
    "-e",
    "--entry-point",
    default="main",
    show_default=True,
    help="Entry point (or flowml.steps pipeline name, or a .py/.sh file) to run.",
)
_version_option = click.option("-v", "--version", default=None, help="Git commit, tag or branch (git URIs).")
_env_option = click.option(
    "--env-manager",
    type=click.Choice(["local", "virtualenv", "uv", "conda"]),
    default="local",
    show_default=True,
    help="Environment the commands run in (docker_env projects always use Docker).",
)


@click.command("run")
@click.argument("uri")
@_entry_option
@_param_option
@click.option("--experiment-name", default=None, help="Experiment to log to (created if missing).")
@click.option("--experiment-id", default=None, help="Experiment id to log to.")
@_env_option
@_version_option
def run(
    uri: str,
    entry_point: str,
    params: tuple[str, ...],
    experiment_name: str | None,
    experiment_id: str | None,
    env_manager: str,
    version: str | None,
) -> None:
    """Run the MLflow project at URI (a directory or git URI, ``#subdir`` allowed) as a Prefect flow."""
    from flowml.exceptions import FlowmlError
    from flowml.projects import run as run_project

    try:
        submitted = run_project(
            uri,
            entry_point,
            _parse_params(params),
            experiment_name,
            experiment_id,
            env_manager,
            True,
            version,
        )
    except FlowmlError as exc:
        click.echo(f"flowml run: {exc.message}", err=True)
        sys.exit(1)
    click.echo(f"Run {submitted.run_id} finished (flow run {submitted.flow_run_id})")


@click.group("project")
def project() -> None:
    """Inspect and deploy MLflow projects."""


@project.command("deploy")
@click.argument("uri")
@click.option("--name", "-n", required=True, help="Deployment name.")
@_entry_option
@_param_option
@click.option("--cron", default=None, help='Cron schedule, e.g. "0 3 * * *".')
@click.option("--interval", type=float, default=None, help="Interval schedule, in seconds.")
@click.option("--work-pool", default=None, help="Register for this work pool (a worker runs it) and exit.")
@click.option("--experiment-name", default=None)
@_env_option
@_version_option
def deploy(
    uri: str,
    name: str,
    entry_point: str,
    params: tuple[str, ...],
    cron: str | None,
    interval: float | None,
    work_pool: str | None,
    experiment_name: str | None,
    env_manager: str,
    version: str | None,
) -> None:
    """Register the project at URI as a Prefect deployment, schedulable from the Prefect UI.

    With --work-pool the deployment is registered for that pool; without, this command serves it (runs its
    scheduled and manual runs) until interrupted.
    """
    from flowml.exceptions import FlowmlError
    from flowml.projects.deploy import deploy_project

    options: dict[str, Any] = {
        "entry_point": entry_point,
        "parameters": _parse_params(params),
        "cron": cron,
        "interval": interval,
        "work_pool": work_pool,
        "version": version,
        "env_manager": env_manager,
        "experiment_name": experiment_name,
    }
    try:
        deployment_id = deploy_project(uri, name, **options)
    except FlowmlError as exc:
        click.echo(f"flowml project deploy: {exc.message}", err=True)
        sys.exit(1)
    if deployment_id:
        click.echo(f"Deployment {name!r} registered ({deployment_id}) for work pool {work_pool!r}")


@project.command("show")
@click.argument("uri")
@_version_option
def show(uri: str, version: str | None) -> None:
    """Validate the project at URI and print its entry points and parameters."""
    from flowml.exceptions import FlowmlError
    from flowml.projects.git import fetch_project
    from flowml.projects.spec import load_project

    try:
        spec = load_project(fetch_project(uri, version).directory)
    except FlowmlError as exc:
        click.echo(f"flowml project show: {exc.message}", err=True)
        sys.exit(1)
    click.echo(f"project {spec.name} ({spec.directory}); environment: {spec.env_kind()}")
    for ep in spec.entry_points.values():
        params = ", ".join(
            f"{p.name}: {p.type}" + (f" = {p.default!r}" if p.default is not None else "")
            for p in ep.parameters.values()
        )
        click.echo(f"  {ep.name}({params}): {ep.command}")
    if spec.pipeline is not None:
        for step_name in spec.pipeline.order():
            step = spec.pipeline.steps[step_name]
            after = f" after {', '.join(step.depends_on)}" if step.depends_on else ""
            click.echo(f"  [{spec.pipeline.name}] {step_name} -> {step.entry_point}{after}")


if __name__ == "__main__":  # pragma: no cover
    project()
