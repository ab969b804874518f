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


@main.group()
def db() -> None:
    """Manage the tracking database schema."""


def _artifact_root() -> str:
    from flowml.settings import get_settings

    return get_settings().artifact_root


@db.command("upgrade")
@click.argument("uri")
def db_upgrade(uri: str) -> None:
    """Migrate the database at URI to the newest schema (creating it if empty)."""
    from flowml.store.migrate import upgrade

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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
