"""What ``flowml server`` does once its options are parsed: check the store, set up logging and
metrics for one or N workers, run uvicorn, shut down gracefully.

* The store is opened before uvicorn starts: a database at another schema revision stops the
  command with one line naming ``flowml db upgrade URI`` (exit 1) instead of a server whose every
  request fails.
* SIGTERM: uvicorn stops accepting connections, lets in-flight requests finish for up to
  ``timeout_graceful_shutdown`` seconds, runs the app's shutdown, and the command exits 0.
* ``--workers N`` (N > 1): ``PROMETHEUS_MULTIPROC_DIR`` points at a fresh temporary directory
  (removed at exit) unless already set, so ``/metrics`` adds up every worker's request counters.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from types import FrameType

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from flowml.exceptions import FlowmlError
from flowml.server.settings import ServerSettings

__all__ = ["preflight", "run"]

logger = logging.getLogger(__name__)

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _shown(uri: str) -> str:
    try:
        return make_url(uri).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only used in a message
        return "<tracking store>"


def preflight(settings: ServerSettings) -> str | None:
    """Open the store as the server will; the one-line reason it cannot serve, or ``None``."""
    from flowml.server.app import check_store

    uri = settings.backend_store_uri
    try:
        check_store(settings)
    except FlowmlError as exc:
        if exc.error_code == "INVALID_STATE":
            from flowml.store import HEAD_REVISION
            from flowml.store.migrate import revision

            return (
                f"the database at {_shown(uri)} is at schema revision {revision(uri)!r}, this flowml "
                f"needs {HEAD_REVISION!r}: back it up, then run `flowml db upgrade {_shown(uri)}`"
            )
        return f"cannot open the tracking store at {_shown(uri)}: {exc.message}"
    except SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0:1]
        return f"cannot open the tracking store at {_shown(uri)}: {first[0] if first else exc!r}"
    return None


@contextlib.contextmanager
def _multiprocess_metrics(workers: int) -> Iterator[None]:
    given = os.environ.get(_MULTIPROC_ENV)
    if given:
        # prometheus_client's rule: the directory must not hold a previous run's files.
        for pattern in ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db"):
            for stale in glob.glob(os.path.join(given, pattern)):
                os.remove(stale)
        yield
        return
    if workers <= 1:
        yield
        return
    path = tempfile.mkdtemp(prefix="flowml-metrics-")
    os.environ[_MULTIPROC_ENV] = path
    try:
        yield
    finally:
        os.environ.pop(_MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    # uvicorn handles SIGTERM itself while it runs and re-raises it after a graceful shutdown;
    # that re-raise (or a SIGTERM before uvicorn started) lands here: a clean stop, exit 0.
    sys.exit(0)


def run(settings: ServerSettings, workers: int) -> None:
    """Serve until SIGTERM/SIGINT (the store must have passed :func:`preflight`)."""
    import uvicorn

    from flowml.server.logs import log_config

    # Workers are separate processes: hand them the settings through the environment.
    os.environ["FLOWML_SERVER_SETTINGS_JSON"] = settings.model_dump_json()
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        with _multiprocess_metrics(workers):
            uvicorn.run(
                "flowml.server.app:app_from_env",
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=workers,
                log_config=log_config(settings.log_format, settings.log_level),
                log_level=settings.log_level,
                access_log=False,  # flowml writes its own (route template, request id)
                timeout_graceful_shutdown=settings.timeout_graceful_shutdown,
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
