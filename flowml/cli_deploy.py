"""``flowml deploy``: wire registry events to deployments, run them, and see/steer what serves.

Registered on the main CLI with ``main.add_command(deploy)`` (see :mod:`flowml.cli`).
"""

from __future__ import annotations

import datetime
import json
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import click

__all__ = ["deploy"]


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.group()
def deploy() -> None:
    """Deploy registered model versions to live endpoints (stage/alias change → Bento → endpoint)."""


@deploy.command()
@click.option("--stage", "stages", multiple=True, default=("Production",), show_default=True)
@click.option("--alias", "aliases", multiple=True, default=("champion",), show_default=True)
@click.option("--model", default="*", show_default=True, help="Registered model name (or * for all).")
@click.option("--target", default="local", show_default=True)
@click.option("--port", type=int, default=None, help="Endpoint port (default: a free one per model).")
@click.option("--work-pool", default=None, help="Run the deployment flow on this work pool's workers "
              "(default: a `flowml deploy worker` serves it).")  # fmt: skip
def setup(
    stages: tuple[str, ...], aliases: tuple[str, ...], model: str, target: str, port: int | None,
    work_pool: str | None,
) -> None:  # fmt: skip
    """Register the deployment flow and its automations on the Prefect server (PREFECT_API_URL)."""
    from flowml.deploy.setup import setup as do_setup

    result = do_setup(
        stages=stages, aliases=aliases, model=model, target=target, port=port, work_pool=work_pool
    )
    click.echo(json.dumps(result))


@deploy.command()
@click.option("--target", default="local", show_default=True)
def worker(target: str) -> None:
    """Run the deployment flow's Prefect deployment here (serve process; Ctrl-C stops it)."""
    from flowml.deploy.setup import serve

    serve(target)


@deploy.command()
@click.option("--poll-interval", type=float, default=0.5, show_default=True)
@click.option("--stage", "stages", multiple=True, default=("Production",), show_default=True)
@click.option("--alias", "aliases", multiple=True, default=("champion",), show_default=True)
@click.option("--heartbeat-file", type=click.Path(dir_okay=False), default=None,
              help="Touch this file after every polling pass (a liveness probe checks its age).")  # fmt: skip
def dispatch(
    poll_interval: float, stages: tuple[str, ...], aliases: tuple[str, ...], heartbeat_file: str | None
) -> None:
    """Deliver registry events: as Prefect events (PREFECT_API_URL set) or to the embedded deployer."""
    from flowml.deploy.setup import dispatcher

    d = dispatcher(poll_interval_s=poll_interval, stages=stages, aliases=aliases)
    if heartbeat_file:
        beat, run_once = Path(heartbeat_file), d.run_once

        def run_once_and_beat() -> int:
            try:
                return run_once()
            finally:  # a failed pass (server down) still proves the loop is alive, not hung
                beat.touch()

        d.run_once = run_once_and_beat  # type: ignore[method-assign]

    def stop(signum: int, frame: FrameType | None) -> None:
        d.stop(timeout=0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"dispatching registry events to {', '.join(t.name for t in d.targets)}", err=True)
    d.run_forever()


def _row(rec: Any) -> str:
    return (f"{rec.id:>5}  {rec.name:<20} v{rec.version:<5} {rec.status:<10} {rec.target:<6} "
            f"{rec.endpoint_url or '-':<24} {_when(rec.serving_since):<19}  "
            f"{rec.flow_run_id or '-':<36}  {rec.bento_tag or '-'}")  # fmt: skip


_HEADER = (f"{'id':>5}  {'name':<20} {'ver':<6} {'status':<10} {'target':<6} {'endpoint':<24} "
           f"{'serving since (UTC)':<19}  {'flow run':<36}  bento")  # fmt: skip


@deploy.command("list")
@click.option("--all", "show_all", is_flag=True, help="Every record, not only what serves now.")
@click.option("--json", "as_json", is_flag=True)
def list_(show_all: bool, as_json: bool) -> None:
    """What serves where, since when, from which flow run and Bento."""
    from flowml.deploy.records import records

    found = records().list(status=None if show_all else "SERVING", max_results=1000)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in found], default=str))
        return
    click.echo(_HEADER)
    for rec in found:
        click.echo(_row(rec))


@deploy.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def status(name: str, as_json: bool) -> None:
    """The deployment history of NAME (newest first) and whether its processes are alive."""
    from flowml.deploy.records import records
    from flowml.deploy.targets import LocalTarget

    found = records().list(name=name, max_results=20)
    state = LocalTarget().state(name)
    if as_json:
        click.echo(json.dumps({"records": [r.to_dict() for r in found], "local": state}, default=str))
        return
    if state:
        alive = "up" if state["front_alive"] and state["backend_alive"] else "DOWN"
        click.echo(f"{name}: {state['url']} ({alive}) serving v{state['info'].get('version')} "
                   f"bento {state['backend']['bento_tag']}")  # fmt: skip
    click.echo(_HEADER)
    for rec in found:
        click.echo(_row(rec))
        if rec.error:
            click.echo(f"       error: {rec.error.splitlines()[0][:200]}")


@deploy.command()
@click.argument("name")
@click.option("--to", "to", default=None, help="Version to roll back to (default: the previous one).")
@click.option("--target", default="local", show_default=True)
def rollback(name: str, to: str | None, target: str) -> None:
    """Serve an earlier version's Bento again (no rebuild) and move the stage/alias back (audited)."""
    from flowml.deploy.rollback import rollback as do_rollback

    try:
        rec = do_rollback(name, to, target=target)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(_row(rec))
    if rec.status != "SERVING":
        raise click.ClickException(f"rollback failed: {rec.error}")


@deploy.command()
@click.argument("name")
def stop(name: str) -> None:
    """Stop NAME's endpoint on this machine (its serving record becomes STOPPED)."""
    from flowml.deploy.records import records
    from flowml.deploy.targets import LocalTarget

    stopped = LocalTarget().stop(name)
    store = records()
    for rec in store.list(name=name, status="SERVING"):
        if rec.target == "local":
            store.update(rec.id, status="STOPPED")
    click.echo(f"{name}: {'stopped' if stopped else 'was not running'}")


@deploy.command()
@click.argument("name", required=False)
@click.option("--bento", "bento_tag", default=None, help="Bento tag (default: what NAME serves now).")
@click.option("--image", default=None, help="Container image (default: the Bento tag, as built).")
@click.option("--namespace", default=None)
@click.option("--replicas", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None)
def manifest(
    name: str | None, bento_tag: str | None, image: str | None, namespace: str | None, replicas: int,
    output: str | None,
) -> None:  # fmt: skip
    """Print a Kubernetes Deployment + Service for a Bento's container image (port 3000, /readyz /livez).

    NAME: a deployed model (its serving Bento); or give --bento TAG."""
    from flowml.deploy.k8s import BentoRef, bento_ref, render_manifest

    if bool(name) == bool(bento_tag):
        raise click.UsageError("give either NAME or --bento TAG")
    labels: dict[str, str] = {}
    if name:
        from flowml.deploy.records import records

        serving = records().list(name=name, status="SERVING", max_results=1)
        if not serving or not serving[0].bento_tag:
            raise click.ClickException(f"{name} has no serving deployment with a Bento; give --bento TAG")
        bento_tag = serving[0].bento_tag
        labels = {"flowml.registered_model": name, "flowml.model_version": str(serving[0].version)}
    assert bento_tag is not None
    try:
        ref = bento_ref(bento_tag)
    except LookupError:  # built elsewhere (e.g. on the worker): render from the exact tag
        try:
            ref = BentoRef(bento_tag, labels)
        except ValueError as exc:
            raise click.ClickException(f"{exc} (the Bento is not in the local store)") from exc
    text = render_manifest(ref, image=image, name=name, namespace=namespace, replicas=replicas)
    if output:
        Path(output).write_text(text)
    else:
        click.echo(text, nl=False)


if __name__ == "__main__":
    deploy()
