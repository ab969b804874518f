"""``flowml ui``: the tracking server with the web UI on the embedded defaults, in one command."""

from __future__ import annotations

import click

__all__ = ["ui"]


@click.command()
@click.option("--backend-store-uri", default=None, help="Tracking store URI (default: ./flowml.db).")
@click.option("--artifacts-destination", default=None, help="Artifact root (default: ./flowml-artifacts).")
@click.option("--host", "-h", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--port", "-p", default=5000, show_default=True, type=int)
def ui(backend_store_uri: str | None, artifacts_destination: str | None, host: str, port: int) -> None:
    """Serve the web UI and the REST API on the embedded defaults and print its URL."""
    import uvicorn

    from flowml.server.settings import ServerSettings
    from flowml.ui import build_app

    overrides: dict[str, object] = {
        "host": host,
        "port": port,
        "allowed_hosts": ["localhost", "127.0.0.1", "[::1]", host],
    }
    if backend_store_uri:
        overrides["backend_store_uri"] = backend_store_uri
    if artifacts_destination:
        overrides["artifacts_destination"] = artifacts_destination
    settings = ServerSettings(**overrides)  # type: ignore[arg-type]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    click.echo(f"flowml UI at http://{shown}:{port}/  (store: {settings.backend_store_uri}; Ctrl+C to stop)")
    uvicorn.run(build_app(settings), host=host, port=port, log_level="warning", access_log=False)
