"""``flowml gc`` and ``flowml db backup`` / ``flowml db restore`` (registered in :mod:`flowml.cli`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

__all__ = ["db_backup", "db_restore", "gc"]

_S3_ENDPOINT = click.option(
    "--s3-endpoint-url", envvar="FLOWML_S3_ENDPOINT_URL", default=None, help="S3 endpoint (MinIO, ...)."
)


@contextmanager
def _errors() -> Iterator[None]:
    from flowml.exceptions import FlowmlError

    try:
        yield
    except FlowmlError as exc:
        raise click.ClickException(f"{exc.error_code}: {exc.message}") from exc


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _ids(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


@click.command("gc")
@click.option(
    "--older-than",
    default=None,
    help="Only runs deleted longer ago than this (#d#h#m#s, floats allowed: 30d, 1d2h3m4s, 1.5d).",
)
@click.option(
    "--backend-store-uri", default=None, help="Database URI (default: FLOWML_TRACKING_URI, else ./flowml.db)."
)
@click.option(
    "--artifacts-destination",
    envvar="FLOWML_SERVER_ARTIFACTS_DESTINATION",
    default=None,
    help="The server's artifact root, to resolve mlflow-artifacts:/ URIs (runs logged through its proxy).",
)
@click.option("--run-ids", default=None, help="Comma-separated deleted runs (default: every deleted run).")
@click.option("--experiment-ids", default=None, help="Comma-separated deleted experiments (with their runs).")
@click.option(
    "--delete-rows",
    is_flag=True,
    help="Also delete the database rows (runs, logged models, empty experiments).",
)
@click.option("--dry-run", is_flag=True, help="Only print what would be deleted (this is the default).")
@click.option("--yes", is_flag=True, help="Delete for real (without it gc is a dry run).")
@_S3_ENDPOINT
def gc(
    older_than: str | None,
    backend_store_uri: str | None,
    artifacts_destination: str | None,
    run_ids: str | None,
    experiment_ids: str | None,
    delete_rows: bool,
    dry_run: bool,
    yes: bool,
    s3_endpoint_url: str | None,
) -> None:
    """Delete the artifacts of runs in the `deleted` lifecycle stage (MLflow's gc), never what a
    registered model version or a live deployment still uses. A dry run unless --yes is given."""
    from flowml.ops.gc import GarbageCollector
    from flowml.settings import get_settings

    if dry_run and yes:
        raise click.UsageError("--dry-run and --yes contradict each other")
    uri = backend_store_uri or get_settings().tracking_uri
    if uri.startswith(("http://", "https://")):
        raise click.UsageError(
            "gc works on the database: pass --backend-store-uri (sqlite:/// or postgresql://)"
        )
    collector = GarbageCollector(
        uri, artifacts_destination=artifacts_destination, s3_endpoint_url=s3_endpoint_url
    )
    try:
        with _errors():
            plan = collector.plan(older_than, run_ids=_ids(run_ids), experiment_ids=_ids(experiment_ids))
            report = collector.run(plan, dry_run=not yes, delete_rows=delete_rows)
    finally:
        collector.close()
    _print_report(report)
    if report.errors:
        raise click.ClickException(f"{len(report.errors)} item(s) failed; see above")


def _print_report(report: Any) -> None:
    verb = "would delete" if report.dry_run else "deleted"
    files = size = kept = 0
    for outcome in report.outcomes:
        item = outcome.item
        head = f"{item.kind} {item.id} (experiment {item.experiment_id})"
        if outcome.skipped or outcome.error:
            click.echo(f"skipped {head}: {outcome.skipped or outcome.error}")
            continue
        result = outcome.result
        files, size, kept = files + result.files, size + result.bytes, kept + result.kept_files
        if item.keep == ("",):
            click.echo(f"kept {head}: protected, {result.kept_files} file(s) under {item.location}")
        else:
            click.echo(f"{verb} {head}: {result.files} file(s), {_size(result.bytes)} under {item.location}")
        for why in item.protected_by:
            click.echo(f"    kept: {why}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"{'dry run: ' if report.dry_run else ''}{verb} {files} file(s), {_size(size)} from "
        f"{len(report.outcomes)} item(s); {kept} protected file(s) kept"
    )
    if report.rows:
        rows = ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in report.rows.items())
        click.echo(f"database rows {'that would be ' if report.dry_run else ''}deleted: {rows}")
    if report.dry_run:
        click.echo("Nothing was deleted. Run again with --yes to delete.")


@click.command("backup")
@click.argument("uri")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option(
    "--artifact-root",
    default=None,
    help="The artifact store to copy (FLOWML_ARTIFACT_ROOT, or the server's --artifacts-destination).",
)
@click.option(
    "--artifacts-to", default=None, help="Put the artifact copy here (e.g. s3://backups/x) instead of DEST."
)
@_S3_ENDPOINT
def db_backup(
    uri: str, dest: str, artifact_root: str | None, artifacts_to: str | None, s3_endpoint_url: str | None
) -> None:
    """Back up the database at URI (SQLite backup API / pg_dump -Fc) and the artifact store into DEST."""
    from flowml.ops.backup import backup

    with _errors():
        manifest = backup(
            uri, dest, artifact_root=artifact_root, artifacts_to=artifacts_to, s3_endpoint_url=s3_endpoint_url
        )
    db = manifest["database"]
    click.echo(f"database: {db['dialect']} at revision {db['revision']}, {sum(db['counts'].values())} rows")
    art = manifest["artifacts"]
    if art is None:
        click.echo("warning: no --artifact-root given: artifacts were NOT backed up", err=True)
    else:
        click.echo(f"artifacts: {art['files']} file(s), {_size(art['bytes'])} from {art['root']}")
        for location in art["outside_root"]:
            click.echo(f"warning: {location} is outside the artifact root and was NOT backed up", err=True)
    click.echo(f"backup written to {dest}")


@click.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.argument("uri")
@click.option(
    "--artifact-root", default=None, help="Restore the artifacts here (default: the original root)."
)
@click.option(
    "--artifacts-from", default=None, help="Where the artifact copy is, if it moved since the backup."
)
@click.option(
    "--verify/--no-verify", default=True, show_default=True, help="Check artifact sizes and sha256."
)
@_S3_ENDPOINT
def db_restore(
    src: str,
    uri: str,
    artifact_root: str | None,
    artifacts_from: str | None,
    verify: bool,
    s3_endpoint_url: str | None,
) -> None:
    """Restore the backup in SRC into the empty database URI (and an empty artifact root)."""
    from flowml.ops.backup import restore

    with _errors():
        report = restore(
            src,
            uri,
            artifact_root=artifact_root,
            artifacts_from=artifacts_from,
            s3_endpoint_url=s3_endpoint_url,
            verify=verify,
        )
    click.echo(f"database restored: {sum(report.counts.values())} rows, row counts match the backup")
    if report.manifest.get("artifacts"):
        click.echo(f"artifacts restored: {report.artifacts_copied} file(s)")
    if report.relocated:
        click.echo(f"artifact URIs rewritten: {sum(report.relocated.values())} row(s)")
    if verify:
        click.echo(f"verified: {report.verified_files} recorded artifact(s) match their sha256")
