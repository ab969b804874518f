"""The ``local`` target: ``bentoml serve`` processes behind a stable port on this machine.

Layout under the deployments directory (``FLOWML_DEPLOYMENTS_DIR``, default ``./flowml-deployments``)::

    <name>/state.json   what serves: front (proxy pid/port, URL) and backend (pid, port, bento, version)
    <name>/upstream     the backend port the front forwards new connections to
    <name>/lock         held while a deployment of <name> is replaced or stopped
    <name>/*.log        process logs

Replacement is atomic for callers of the endpoint URL: the new ``bentoml serve`` starts on a fresh
port; only once it is ready (and passes ``check``) does ``upstream`` switch to it; then the old backend
is stopped. If anything fails before the switch the new process is stopped and the old one keeps
serving. Ports are picked free and then bound by the started process; readiness is only believed when a
process of the started group holds the listening socket, and a port another process took meanwhile is retried
on a fresh one (:class:`PortTaken`). Every process is started in its own session and stopped by process
group, so any process (the CLI) can find and stop a deployment from the state file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from flowml.deploy.bento import serve_command
from flowml.deploy.targets._listeners import held_by_group

__all__ = ["LocalTarget", "PortTaken", "deployments_dir", "free_port", "stop_process_group"]

logger = logging.getLogger(__name__)

_PORT_ATTEMPTS = 3  # fresh backend ports tried when another process takes the picked one first


class PortTaken(RuntimeError):
    """Another process bound the backend's port between ``free_port`` and ``bentoml serve``."""


HOST = "127.0.0.1"  # backends (bentoml serve) always listen on loopback, behind the front proxy


def front_host() -> str:
    """Where the stable endpoint (the front proxy) listens: ``FLOWML_DEPLOY_BIND_HOST``, default loopback.

    Set ``0.0.0.0`` on a worker whose endpoints other machines/containers must reach."""
    return os.environ.get("FLOWML_DEPLOY_BIND_HOST") or HOST


def advertised_host() -> str:
    """The host put in endpoint URLs: ``FLOWML_DEPLOY_ADVERTISE_HOST``, else the bind host (this machine's
    hostname when binding every interface)."""
    if advertised := os.environ.get("FLOWML_DEPLOY_ADVERTISE_HOST"):
        return advertised
    bind = front_host()
    return socket.gethostname() if bind in ("0.0.0.0", "::") else bind


def deployments_dir() -> Path:
    return Path(os.environ.get("FLOWML_DEPLOYMENTS_DIR") or "flowml-deployments").absolute()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip(".") or "_"


def _alive(pid: int | None, marker: str) -> bool:
    """``pid`` runs and is ours (its command line contains ``marker``): guards against pid reuse."""
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z" and marker in cmdline


def stop_process_group(pid: int, marker: str = "", timeout: float = 15.0) -> None:
    """SIGTERM the process group led by ``pid``, wait, then SIGKILL what is left of the group."""
    if marker and not _alive(pid, marker):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # stragglers (workers) of a leader that already exited
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid, marker):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class LocalTarget:
    """Serve Bentos locally; one front port per deployment name."""

    name = "local"

    def __init__(self, root: str | os.PathLike[str] | None = None, *, ready_timeout: float = 120.0) -> None:
        self.root = Path(root).absolute() if root is not None else deployments_dir()
        self.ready_timeout = ready_timeout

    # -- state ----------------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        path = self.root / _slug(name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[Path]:
        path = self._dir(name)
        with open(path / "lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield path
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def state(self, name: str) -> dict[str, Any] | None:
        """The deployment's state file plus liveness (``front_alive``, ``backend_alive``); None if none."""
        path = self.root / _slug(name) / "state.json"
        if not path.is_file():
            return None
        state: dict[str, Any] = json.loads(path.read_text())
        state["front_alive"] = _alive(state.get("front", {}).get("pid"), "_proxy")
        state["backend_alive"] = _alive(state.get("backend", {}).get("pid"), "bentoml")
        return state

    def states(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        found = (self.state(p.name) for p in sorted(self.root.iterdir()) if (p / "state.json").is_file())
        return [s for s in found if s is not None]

    # -- processes ------------------------------------------------------------------------------
    def _spawn(self, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(log, "ab") as fh:
            return subprocess.Popen(
                cmd, cwd=str(self.root), env=env, stdout=fh, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        """Wait until ``proc``'s server answers ``/readyz`` on ``port`` — itself, not another process
        that took the port first (:mod:`._listeners`). Raises :class:`PortTaken` when ``proc`` exits
        while another process listens on the port."""
        url = f"http://{HOST}:{port}"
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                if held_by_group(proc.pid, port) is False:
                    raise PortTaken(f"port {port} was taken by another process before bentoml serve bound it")
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(
                    f"bentoml serve exited with {proc.returncode} before it was ready:\n{tail}"
                )
            with contextlib.suppress(httpx.HTTPError):
                answered = httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200
                if answered and held_by_group(proc.pid, port) is not False:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"bentoml serve at {url} not ready after {self.ready_timeout}s")

    def _ensure_front(self, path: Path, state: dict[str, Any] | None, port: int | None) -> dict[str, Any]:
        """The running front (proxy) for the wanted port, starting one if needed."""
        front = (state or {}).get("front") or {}
        same_bind = front.get("host", HOST) == front_host()
        if _alive(front.get("pid"), "_proxy") and port in (None, front.get("port")) and same_bind:
            return dict(front)
        bind = front_host()
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            want = port or free_port()
            cmd = [sys.executable, "-m", "flowml.deploy.targets._proxy", "--host", bind, "--port", str(want),
                   "--upstream-file", str(path / "upstream")]  # fmt: skip
            proc = self._spawn(cmd, path / "front.log")
            try:
                return self._wait_front(proc, bind, want, path / "front.log")
            except PortTaken:
                if port is not None or attempt == _PORT_ATTEMPTS:
                    raise
                logger.warning("endpoint proxy: port %d was taken; retrying on another", want)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_front(self, proc: subprocess.Popen[bytes], bind: str, port: int, log: Path) -> dict[str, Any]:
        """Wait until the proxy ``proc`` listens on ``port`` (itself, not another process)."""
        probe = HOST if bind in ("0.0.0.0", "::") else bind
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                if held_by_group(proc.pid, port) is False:
                    raise PortTaken(f"endpoint proxy: port {port} is in use by another process")
                raise RuntimeError(f"endpoint proxy on port {port} exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection((probe, port), timeout=0.5):
                if held_by_group(proc.pid, port) is not False:
                    url = f"http://{advertised_host()}:{port}"
                    return {"pid": proc.pid, "port": port, "url": url, "host": bind}
            time.sleep(0.05)
        stop_process_group(proc.pid)
        raise TimeoutError(f"endpoint proxy on port {port} did not start")

    # -- operations -----------------------------------------------------------------------------
    def deploy(
        self,
        name: str,
        bento_tag: str,
        *,
        bentoml_home: str | os.PathLike[str] | None = None,
        port: int | None = None,
        info: dict[str, Any] | None = None,
        preflight: Callable[[], None] | None = None,
        check: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Serve ``bento_tag`` as ``name``: new backend ready (and ``check(url)`` passes) → switch → old
        backend stopped. ``preflight()`` runs while the new backend boots; if it (or anything before the
        switch) raises, the new backend is stopped and the old one keeps serving. Returns the new state
        (``url`` is the stable endpoint)."""
        with self._locked(name) as path:
            old = self.state(name)
            env = dict(os.environ)
            if bentoml_home is not None:
                env["BENTOML_HOME"] = os.fspath(bentoml_home)
            env.setdefault("BENTOML_DO_NOT_TRACK", "true")
            for attempt in range(1, _PORT_ATTEMPTS + 1):
                backend_port = free_port()
                log = path / f"serve-{int(time.time() * 1000)}.log"
                proc = self._spawn(serve_command(bento_tag, host=HOST, port=backend_port), log, env)
                backend_url = f"http://{HOST}:{backend_port}"
                switched = False
                try:
                    if preflight is not None and attempt == 1:  # a retry only replaces the backend
                        preflight()
                    try:
                        self._wait_ready(proc, backend_port, log)
                    except PortTaken:  # the backend's port only; a taken front port is the caller's error
                        if attempt == _PORT_ATTEMPTS:
                            raise
                        logger.warning(
                            "deployment %s: backend port %d was taken; retrying", name, backend_port
                        )
                        continue
                    if check is not None:
                        check(backend_url)
                    front = self._ensure_front(path, old, port)
                    _write_atomic(path / "upstream", str(backend_port))
                    switched = True
                finally:
                    if not switched:
                        stop_process_group(proc.pid)
                break
            backend = {
                "pid": proc.pid, "port": backend_port, "url": backend_url, "bento_tag": bento_tag,
                "bentoml_home": env.get("BENTOML_HOME"), "log": str(log), "started": time.time(),
            }  # fmt: skip
            state = {"name": name, "target": self.name, "url": front["url"], "front": front,
                     "backend": backend, "info": dict(info or {})}  # fmt: skip
            _write_atomic(path / "state.json", json.dumps(state, indent=2))
            if old is not None:
                old_backend = old.get("backend") or {}
                if old_backend.get("pid") and old_backend.get("pid") != proc.pid:
                    stop_process_group(int(old_backend["pid"]), "bentoml")
                old_front = old.get("front") or {}
                if old_front.get("pid") and old_front.get("pid") != front["pid"]:
                    stop_process_group(int(old_front["pid"]), "_proxy")
            return state

    def stop(self, name: str) -> bool:
        """Stop the deployment's processes and remove its state; False when there was none."""
        with self._locked(name) as path:
            state = self.state(name)
            if state is None:
                return False
            if pid := (state.get("backend") or {}).get("pid"):
                stop_process_group(int(pid), "bentoml")
            if pid := (state.get("front") or {}).get("pid"):
                stop_process_group(int(pid), "_proxy")
            for leftover in ("state.json", "upstream"):
                with contextlib.suppress(FileNotFoundError):
                    (path / leftover).unlink()
            return True
