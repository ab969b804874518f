"""Who listens on a loopback TCP port: the identity check behind a local backend's readiness.

A backend's port is picked with ``bind(0)`` and then bound again by ``bentoml serve``, seconds later.
Another process can take the port in between (another deployment's backend, anything on the machine);
ours then fails to bind, but until it exits a readiness probe on the port is answered by the other
process. So a ``/readyz`` answer only counts once a process of our backend's process group holds the
listening socket (Linux: ``/proc/net/tcp*`` names the socket's inode, ``/proc/<pid>/fd`` who holds it).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["held_by_group"]

_PROC = Path("/proc")
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's "st" column


def _listener_inodes(port: int) -> set[str] | None:
    """Socket inodes listening on TCP ``port`` (any address, IPv4 or IPv6); None without ``/proc/net``."""
    found: set[str] = set()
    readable = False
    for table in ("tcp", "tcp6"):
        try:
            lines = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found if readable else None


def held_by_group(pgid: int, port: int) -> bool | None:
    """Who listens on TCP ``port``: True when a process of group ``pgid`` does, False when only other
    processes do, None when nobody does or this system has no ``/proc`` to tell."""
    inodes = _listener_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    return True
        except OSError:  # exited meanwhile, or not ours to read
            continue
    return False
