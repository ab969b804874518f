"""``flowml models serve`` / ``flowml models build``: one pyfunc model behind the generated BentoML service.

Registered on the main CLI with ``main.add_command(models)`` (see :mod:`flowml.cli`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from types import FrameType

import click

__all__ = ["models"]


@click.group()
def models() -> None:
    """Serve and package models (MLflow's `mlflow models`)."""


@contextlib.contextmanager
def _bentoml_home(explicit: str | None) -> Iterator[str]:
    """The BentoML home to use: --bentoml-home, else $BENTOML_HOME, else a temporary one (removed after)."""
    home = explicit or os.environ.get("BENTOML_HOME")
    if home:
        yield os.path.abspath(home)
        return
    with tempfile.TemporaryDirectory(prefix="flowml-bentoml-home-") as tmp:
        yield tmp


def _run_child(cmd: list[str], env: dict[str, str]) -> int:
    """Run ``cmd`` in its own process group; forward SIGINT/SIGTERM to the group; return its exit code."""
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)

    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if proc.poll() is None:  # pragma: no cover - only when wait() itself was interrupted
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@models.command("serve")
@click.option(
    "--model-uri", "-m", required=True, help="runs:/…, models:/name/version|stage, models:/name@alias, a path"
)
@click.option("--port", "-p", default=5000, show_default=True, type=int)
@click.option("--host", "-h", default="127.0.0.1", show_default=True, help="Bind address.")
@click.option("--workers", "-w", default=1, show_default=True, type=int, help="BentoML worker processes.")
@click.option(
    "--batching/--no-batching", default=False, show_default=True, help="Adaptive batching on /predict."
)
@click.option("--bentoml-home", default=None, help="BentoML store (default: $BENTOML_HOME, else a temp dir).")
@click.option("--name", default=None, help="BentoML model/service name (default: the registered model name).")
def serve(
    model_uri: str,
    port: int,
    host: str,
    workers: int,
    batching: bool,
    bentoml_home: str | None,
    name: str | None,
) -> None:
    """Serve MODEL_URI: POST /invocations (MLflow's protocol), POST /predict, GET /ping /health /version."""
    with _bentoml_home(bentoml_home) as home, tempfile.TemporaryDirectory(prefix="flowml-serve-") as ctx:
        from flowml.deploy.bento import SERVICE_CLASS, SERVICE_MODULE, prepare_service, serve_command

        source = prepare_service(model_uri, ctx, name=name, batching=batching, workers=workers)
        click.echo(f"Serving {source.uri} (sha256 {source.sha256[:12]}) on http://{host}:{port}", err=True)
        env = {**os.environ, "BENTOML_HOME": home}
        cmd = serve_command(f"{SERVICE_MODULE}:{SERVICE_CLASS}", host=host, port=port, working_dir=ctx)
        code = _run_child(cmd, env)
    if code not in (0, -signal.SIGINT, -signal.SIGTERM):
        sys.exit(code)


@models.command("build")
@click.option(
    "--model-uri", "-m", required=True, help="runs:/…, models:/name/version|stage, models:/name@alias, a path"
)
@click.option("--bentoml-home", default=None, help="BentoML store to build into (default: $BENTOML_HOME).")
@click.option("--name", default=None, help="Bento name (default: the registered model name).")
@click.option(
    "--batching/--no-batching", default=False, show_default=True, help="Adaptive batching on /predict."
)
@click.option("--workers", "-w", default=1, show_default=True, type=int, help="BentoML worker processes.")
@click.option(
    "--lock-packages/--no-lock-packages",
    default=False,
    show_default=True,
    help="Resolve and pin every requirement (needs a package index).",
)
def build(
    model_uri: str,
    bentoml_home: str | None,
    name: str | None,
    batching: bool,
    workers: int,
    lock_packages: bool,
) -> None:
    """Build a Bento for MODEL_URI; print its tag and the path of its Dockerfile.

    `bentoml containerize TAG` turns the Bento into an image (it needs Docker).
    """
    from flowml.deploy.bento import build_bento

    bento = build_bento(
        model_uri,
        name=name,
        bentoml_home=bentoml_home,
        batching=batching,
        workers=workers,
        lock_packages=lock_packages,
    )
    click.echo(bento.tag)
    click.echo(bento.dockerfile)


if __name__ == "__main__":  # pragma: no cover - `python -m flowml.cli_models serve ...`
    models()
