"""The ``flowml`` command. Subcommands import what they need when they run."""

from __future__ import annotations

import logging
import sys

import click

__all__ = ["main"]


@click.group()
@click.version_option(package_name="flowml")
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """flowml: MLflow-compatible tracking, models and registry on Prefect."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@main.command()
@click.option("--backend-store-uri", default=None, help="Tracking store URI (default: ./flowml.db).")
@click.option("--artifacts-destination", default=None, help="Artifact root served by the proxy.")
@click.option("--serve-artifacts/--no-serve-artifacts", default=True, show_default=True)
@click.option("--host", "-h", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", "-p", default=5000, show_default=True, type=int)
@click.option("--workers", "-w", default=1, show_default=True, type=int)
@click.option(
    "--allowed-hosts",
    default=None,
    help="Comma-separated Host header values to accept ('*' for any); default: the bind host + localhost.",
)
@click.option(
    "--auth",
    is_flag=True,
    help="Require credentials and permissions (admin from FLOWML_SERVER_AUTH_ADMIN_USERNAME/_PASSWORD).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines as text or JSON objects with a request_id (default: FLOWML_SERVER_LOG_FORMAT or text).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default=None,
    help="Server log level (default: FLOWML_SERVER_LOG_LEVEL or info; access lines are info).",
)
@click.option("--no-access-log", is_flag=True, help="Do not log a line per request.")
@click.option("--metrics-public", is_flag=True, help="With --auth: anyone may scrape /metrics (else admins).")
@click.option(
    "--timeout-graceful-shutdown",
    type=int,
    default=None,
    help="Seconds SIGTERM lets in-flight requests finish (default: 25).",
)
def server(
    auth: bool,
    backend_store_uri: str | None,
    artifacts_destination: str | None,
    serve_artifacts: bool,
    host: str,
    port: int,
    workers: int,
    allowed_hosts: str | None,
    log_format: str | None,
    log_level: str | None,
    no_access_log: bool,
    metrics_public: bool,
    timeout_graceful_shutdown: int | None,
) -> None:
    """Run the MLflow-compatible tracking server (Prometheus metrics at /metrics)."""
    from flowml.server import launch
    from flowml.server.settings import ServerSettings

    overrides: dict[str, object] = {
        "serve_artifacts": serve_artifacts,
        "host": host,
        "port": port,
        "auth": auth,
    }
    if backend_store_uri:
        overrides["backend_store_uri"] = backend_store_uri
    if artifacts_destination:
        overrides["artifacts_destination"] = artifacts_destination
    hosts = ["localhost", "127.0.0.1", "[::1]", host]
    if allowed_hosts:
        hosts = [h.strip() for h in allowed_hosts.split(",") if h.strip()]
    overrides["allowed_hosts"] = hosts
    optional: dict[str, object] = {
        "log_format": log_format,
        "log_level": log_level,
        "timeout_graceful_shutdown": timeout_graceful_shutdown,
        "access_log": False if no_access_log else None,
        "metrics_public": True if metrics_public else None,
    }
    overrides.update({k: v for k, v in optional.items() if v is not None})
    settings = ServerSettings(**overrides)  # type: ignore[arg-type]
    problem = launch.preflight(settings)
    if problem:
        raise click.ClickException(problem)
    launch.run(settings, workers)


@main.group()
def db() -> None:
    """Manage the tracking database schema."""


def _artifact_root() -> str:
    from flowml.settings import get_settings

    return get_settings().artifact_root


@db.command("upgrade")
@click.argument("uri")
@click.option(
    "--backup-to",
    default=None,
    type=click.Path(file_okay=False),
    help="Back the database up into this new directory first (default for SQLite: a file beside it).",
)
@click.option("--no-backup", is_flag=True, help="Do not back up an existing database before migrating it.")
def db_upgrade(uri: str, backup_to: str | None, no_backup: bool) -> None:
    """Migrate the database at URI to the newest schema (creating it if empty)."""
    from flowml.ops.backup import backup_before_upgrade
    from flowml.store.migrate import upgrade

    if not no_backup and (saved := backup_before_upgrade(uri, backup_to)):
        click.echo(f"backed up the database to {saved}")
    click.echo(f"database at revision {upgrade(uri, _artifact_root())}")


@db.command("downgrade")
@click.argument("uri")
@click.argument("revision")
def db_downgrade(uri: str, revision: str) -> None:
    """Migrate the database at URI down to REVISION (e.g. 'base' or '-1')."""
    from flowml.store.migrate import downgrade

    click.echo(f"database at revision {downgrade(uri, revision) or 'base'}")


@db.command("current")
@click.argument("uri")
def db_current(uri: str) -> None:
    """Print the schema revision of the database at URI."""
    from flowml.store.migrate import revision

    click.echo(revision(uri) or "none")


def _register_subcommands() -> None:
    """Command groups that live in their own modules (imported only to register them)."""
    from flowml.cli_deploy import deploy
    from flowml.cli_models import models
    from flowml.cli_ops import db_backup, db_restore, gc
    from flowml.cli_projects import project, run
    from flowml.cli_ui import ui

    main.add_command(run)
    main.add_command(project)
    main.add_command(models)
    main.add_command(ui)
    main.add_command(deploy)
    main.add_command(gc)
    db.add_command(db_backup)
    db.add_command(db_restore)


_register_subcommands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
