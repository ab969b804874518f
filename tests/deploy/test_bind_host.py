"""Where a local deployment's stable endpoint listens: loopback by default, every interface (with an
advertised host in the endpoint URL) when ``FLOWML_DEPLOY_BIND_HOST`` says so — a worker container whose
endpoints other containers call."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest

from flowml.deploy.targets import LocalTarget
from flowml.deploy.targets.local import stop_process_group


def _outward_ip() -> str:
    """This machine's address on its default route (a UDP 'connect' sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.123", 9))
        ip: str = s.getsockname()[0]
    assert not ip.startswith("127."), "the test needs a non-loopback interface"
    return ip


def _reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
        return True
    return False


@pytest.mark.parametrize("bind", [None, "0.0.0.0"])
def test_front_binds_where_told_and_advertises_its_host(
    bind: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWML_DEPLOY_BIND_HOST", raising=False)
    monkeypatch.delenv("FLOWML_DEPLOY_ADVERTISE_HOST", raising=False)
    if bind:
        monkeypatch.setenv("FLOWML_DEPLOY_BIND_HOST", bind)
        monkeypatch.setenv("FLOWML_DEPLOY_ADVERTISE_HOST", "worker.flowml.test")
    path = tmp_path / "model"
    path.mkdir()
    (path / "upstream").write_text("1")
    front = LocalTarget(tmp_path)._ensure_front(path, None, None)
    try:
        port = front["port"]
        assert _reachable("127.0.0.1", port)
        if bind:
            assert front["url"] == f"http://worker.flowml.test:{port}"
            assert _reachable(_outward_ip(), port)
        else:
            assert front["url"] == f"http://127.0.0.1:{port}"
            assert not _reachable(_outward_ip(), port)  # loopback only
    finally:
        stop_process_group(front["pid"], "_proxy")
