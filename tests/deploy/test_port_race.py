"""A local deployment's ports are picked with ``bind(0)`` and bound again by the process started on
them. When another process takes the port in between, the deployment must not take that process's
answers for its own backend's (it would route the endpoint to somebody else's server): it notices
who holds the listening socket and retries on a fresh port.

The race itself cannot be timed for real, so the port draw is pinned to a port a real foreign HTTP
server holds; everything else (processes, sockets, HTTP through the front proxy) is real. The backend
is a small HTTP server that, like ``bentoml serve``, binds a second or so after it starts.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flowml.deploy.targets import local
from flowml.deploy.targets._listeners import held_by_group
from flowml.deploy.targets.local import LocalTarget, PortTaken, free_port, stop_process_group

# argv: port, name, delay before binding. Answers every GET with its name (200), /readyz included.
_SERVER = """
import http.server, sys, time
port, name, delay = int(sys.argv[1]), sys.argv[2].encode(), float(sys.argv[3])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", str(len(name))); self.end_headers()
        self.wfile.write(name)
    def log_message(self, *a): pass
time.sleep(delay)
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def _start(port: int, name: str, delay: float = 0.0) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(port), name, str(delay)],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _listening(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@pytest.fixture
def foreign() -> Iterator[int]:
    """A port held by another process's HTTP server, which answers ``/readyz`` with 200 too."""
    port = free_port()
    proc = _start(port, "foreign")
    try:
        _listening(port)
        yield port
    finally:
        stop_process_group(proc.pid)


def test_listener_identity_tells_our_group_from_others(foreign: int) -> None:
    port = free_port()
    ours = _start(port, "ours")
    try:
        _listening(port)
        assert held_by_group(ours.pid, port) is True
        assert held_by_group(ours.pid, foreign) is False  # somebody listens there, not this group
        assert held_by_group(os.getpgid(0), port) is False
    finally:
        stop_process_group(ours.pid)
    assert held_by_group(ours.pid, port) is None  # nobody listens any more


def test_readiness_is_not_taken_from_the_process_holding_the_port(foreign: int, tmp_path: Path) -> None:
    # our "backend" boots for a second, then fails to bind the taken port and exits
    proc = _start(foreign, "ours", delay=1.0)
    try:
        with pytest.raises(PortTaken, match=f"port {foreign} was taken"):
            LocalTarget(tmp_path, ready_timeout=30)._wait_ready(proc, foreign, tmp_path / "log")
    finally:
        stop_process_group(proc.pid)


@pytest.mark.parametrize("taken_draw", [0, 1], ids=["backend-port", "front-port"])
def test_deploy_retries_on_a_fresh_port_and_serves_its_own_backend(
    taken_draw: int, foreign: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws: list[int] = []

    def draw() -> int:
        port = foreign if len(draws) == taken_draw else free_port()
        draws.append(port)
        return port

    monkeypatch.setattr(local, "free_port", draw)
    monkeypatch.setattr(
        local, "serve_command", lambda tag, host, port: [sys.executable, "-c", _SERVER, str(port), tag, "1.0"]
    )
    target = LocalTarget(tmp_path, ready_timeout=60)
    preflights: list[int] = []
    state = target.deploy("model", "bento-1", preflight=lambda: preflights.append(1))
    try:
        assert len(draws) == 3 and draws[taken_draw] == foreign  # one draw lost to the foreign server
        assert foreign not in (state["backend"]["port"], state["front"]["port"])
        assert preflights == [1]  # the retry does not run the preflight again
        assert httpx.get(state["url"], timeout=10).text == "bento-1"  # through the front: our backend
        assert httpx.get(f"http://127.0.0.1:{foreign}", timeout=10).text == "foreign"  # left alone
        assert held_by_group(state["backend"]["pid"], state["backend"]["port"]) is True
    finally:
        assert target.stop("model")


def test_a_taken_port_asked_for_by_name_is_a_clear_error(foreign: int, tmp_path: Path) -> None:
    path = tmp_path / "model"
    path.mkdir()
    with pytest.raises(PortTaken, match=f"port {foreign} is in use by another process"):
        front = LocalTarget(tmp_path)._ensure_front(path, None, foreign)
        stop_process_group(front["pid"])  # reached only when the test fails: leave no proxy behind


def test_a_taken_front_port_asked_for_by_name_fails_the_deploy_once(
    foreign: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the backend's port is retried: a named front port in use is the caller's error, reported
    at once, with the new backend stopped (no second backend boot)."""
    started: list[int] = []

    def command(tag: str, host: str, port: int) -> list[str]:
        started.append(port)
        return [sys.executable, "-c", _SERVER, str(port), tag, "0"]

    monkeypatch.setattr(local, "serve_command", command)
    target = LocalTarget(tmp_path, ready_timeout=60)
    with pytest.raises(PortTaken, match=f"port {foreign} is in use by another process"):
        target.deploy("model", "bento-1", port=foreign)
    assert len(started) == 1
    assert held_by_group(os.getpgid(0), started[0]) is None  # the backend was stopped: nobody listens
    assert target.state("model") is None
