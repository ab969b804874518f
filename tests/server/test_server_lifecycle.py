"""``flowml server`` start and stop as an operator sees them: SIGTERM lets the request in flight
finish (200, the whole upload stored), refuses new connections meanwhile and exits 0; a request
that outlives ``--timeout-graceful-shutdown`` is cut off; a database at an old schema revision
stops the command with one line naming ``flowml db upgrade``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from flowml.store.migrate import revision, upgrade
from tests.fixtures.ports import free_port
from tests.fixtures.server import flowml_server_popen

CHUNK = b"x" * 65_536
UPLOAD = "/api/2.0/mlflow-artifacts/artifacts/0/slow/blob.bin"


class SlowUpload:
    """A PUT whose body trickles in: ``chunks`` chunks, ``pause`` seconds apart, in a thread."""

    def __init__(self, url: str, chunks: int, pause: float) -> None:
        self.url, self.chunks, self.pause = url, chunks, pause
        self.first_chunk_sent = threading.Event()
        self.response: httpx.Response | None = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _body(self) -> Iterator[bytes]:
        for i in range(self.chunks):
            yield CHUNK
            self.first_chunk_sent.set()
            if i < self.chunks - 1:
                time.sleep(self.pause)

    def _run(self) -> None:
        try:
            self.response = httpx.put(self.url + UPLOAD, content=self._body(), timeout=60)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            self.error = exc

    def start(self) -> SlowUpload:
        self.thread.start()
        assert self.first_chunk_sent.wait(30)
        time.sleep(0.5)  # the server has the request line and headers: the request is in flight
        return self


def _refuses_connections(url: str, timeout: float = 5, *, queued_is_refused: bool = False) -> bool:
    """New connections stop being served. One worker closes its listening socket (connect fails);
    uvicorn's supervisor of several workers keeps the shared socket open until they have all exited, so
    there a new connection is queued by the kernel and never answered (``queued_is_refused``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/health", timeout=1)
        except httpx.ConnectError:
            return True  # the listening socket is closed
        except httpx.ReadTimeout:
            if queued_is_refused:
                return True
        except (httpx.ReadError, httpx.RemoteProtocolError):
            pass  # a connection the kernel queued just before the close: reset, keep polling
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_finishes_the_request_in_flight_and_exits_0(tmp_path: Path, workers: int) -> None:
    """With ``--workers 2`` the signal goes to uvicorn's supervisor, which passes it on to the worker
    processes: the one serving the upload finishes it all the same."""
    dest = tmp_path / "artifacts"
    with flowml_server_popen(
        f"sqlite:///{tmp_path / 'g.db'}",
        str(dest),
        "--timeout-graceful-shutdown",
        "30",
        "--workers",
        str(workers),
        log=tmp_path / "s.log",
    ) as (url, proc):
        upload = SlowUpload(url, chunks=12, pause=0.25).start()
        sent_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert _refuses_connections(url, queued_is_refused=workers > 1), "new connections must not be served"
        assert upload.thread.is_alive(), "the upload should still be streaming when connections are refused"
        upload.thread.join(60)
        assert upload.error is None, upload.error
        assert upload.response is not None and upload.response.status_code == 200, upload.response
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - sent_at < 30
    stored = dest / "0" / "slow" / "blob.bin"
    assert stored.stat().st_size == 12 * len(CHUNK)  # the whole body, not a truncated file
    log = (tmp_path / "s.log").read_text()
    assert "Waiting for connections to close" in log and "Traceback" not in log


def test_a_request_longer_than_the_graceful_timeout_is_cut_off(tmp_path: Path) -> None:
    with flowml_server_popen(
        f"sqlite:///{tmp_path / 'c.db'}",
        str(tmp_path / "artifacts"),
        "--timeout-graceful-shutdown",
        "1",
        log=tmp_path / "s.log",
    ) as (url, proc):
        upload = SlowUpload(url, chunks=40, pause=0.25).start()  # would need ~10 s
        sent_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert time.monotonic() - sent_at < 8
        upload.thread.join(30)
        # uvicorn answers a cancelled request that had not started its response with a 500
        assert upload.error is not None or (
            upload.response is not None and upload.response.status_code == 500
        )
    assert "timeout graceful shutdown exceeded" in (tmp_path / "s.log").read_text()
    assert not (tmp_path / "artifacts" / "0" / "slow" / "blob.bin").exists()  # nothing half-written


def _server_cmd(uri: str, dest: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "flowml.cli",
        "server",
        "--backend-store-uri",
        uri,
        "--artifacts-destination",
        str(dest),
        "--port",
        str(free_port()),
    ]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("FLOWML_", "MLFLOW_"))}


def test_an_unmigrated_database_is_refused_with_one_clear_line(store_uri: str, tmp_path: Path) -> None:
    """A database created by the first migration (as an older flowml left it) is not served."""
    assert upgrade(store_uri, str(tmp_path), target="0001_initial") == "0001_initial"
    done = subprocess.run(
        _server_cmd(store_uri, tmp_path / "a"), env=_clean_env(), capture_output=True, timeout=120
    )
    assert done.returncode == 1
    err = done.stderr.decode().strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("Error: ") and "'0001_initial'" in err
    shown = make_url(store_uri).render_as_string(hide_password=True)
    assert f"`flowml db upgrade {shown}`" in err
    assert revision(store_uri) == "0001_initial"  # nothing was changed


def test_an_unreachable_database_is_one_line_too(tmp_path: Path) -> None:
    uri = "postgresql://flowml:hunter2@127.0.0.1:1/flowml"
    done = subprocess.run(
        _server_cmd(uri, tmp_path / "a"), env=_clean_env(), capture_output=True, timeout=120
    )
    err = done.stderr.decode().strip()
    assert done.returncode == 1 and "\n" not in err, err
    assert err.startswith("Error: cannot open the tracking store at postgresql://flowml:***@127.0.0.1:1/")
    assert "hunter2" not in err


@pytest.mark.parametrize("value", ["xml", "JSON "])
def test_a_bad_log_format_is_a_usage_error(value: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [*_server_cmd(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "a"), "--log-format", value],
        env=_clean_env(),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 2 and b"--log-format" in done.stderr
