"""Which ports a stand-in listens on, read from /proc, so servers can bind port 0.

Picking a free port and handing it to a server races with every other process that
does the same: between the check and the server's bind, the port can be taken, and a
readiness probe then talks to the wrong server.  Instead the stand-ins start on port 0
(the kernel picks) and this module finds the listening sockets the process and its
children own: a socket's inode in /proc/PID/fd matched against /proc/net/tcp{,6}.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

_LISTEN = "0A"


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the stand-ins run behind a bash wrapper)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces; the ppid follows it.
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _socket_inodes(pids: list[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            links = list(fd_dir.iterdir())
        except OSError:
            continue
        for link in links:
            try:
                target = os.readlink(link)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


def listening_sockets() -> list[tuple[str, int, str]]:
    """Every listening TCP socket: (local address as /proc/net shows it in hex, port, inode)."""
    sockets = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN:
                address, hex_port = fields[1].rsplit(":", 1)
                sockets.append((address, int(hex_port, 16), fields[9]))
    return sockets


def listening_ports(pid: int) -> set[int]:
    """TCP ports that ``pid`` or its descendants are listening on."""
    inodes = _socket_inodes(_descendants(pid))
    return {port for _, port, inode in listening_sockets() if inode in inodes}


def wait_for_ports(
    pid: int,
    count: int,
    *,
    alive: Callable[[], bool],
    timeout: float,
    what: str,
) -> set[int]:
    """Wait until ``pid``'s tree listens on ``count`` ports; raise if it dies or is slow."""
    deadline = time.monotonic() + timeout
    while True:
        ports = listening_ports(pid)
        if len(ports) >= count:
            return ports
        if not alive():
            raise RuntimeError(f"{what} exited before it listened")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen within {timeout:g} s")
        time.sleep(0.05)
