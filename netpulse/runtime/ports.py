"""Free TCP port discovery for processes NetPulse starts on loopback.

Test servers (redis, sshd, simulated devices) must not collide with each other or with
services already running on the machine, so they listen on ports the kernel hands out
instead of fixed numbers. The port is released before the caller binds it, which leaves
a small race window; callers that start a server immediately afterwards are fine.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterable
from contextlib import ExitStack

__all__ = ["free_port", "free_ports", "listening_ports", "wait_listening"]

_PROC_NET_TCP = "/proc/net/tcp"
_TCP_LISTEN = "0A"
_ANY_ADDRESS = bytes(4)


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free a moment ago (bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Return ``count`` distinct free ports on ``host``.

    All sockets stay bound until every port is chosen: calling :func:`free_port` in a
    loop could hand out the same port twice, because each socket is closed before the
    next bind.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    with ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def listening_ports(host: str = "127.0.0.1") -> set[int]:
    """Return the TCP ports in LISTEN state on IPv4 address ``host`` (Linux only).

    Reads ``/proc/net/tcp`` instead of connecting: a probe connection is itself seen by
    the server (an SSH server logs a failed handshake for it), while the kernel table
    answers without side effects.
    """
    wanted = socket.inet_aton(host)
    ports: set[int] = set()
    with open(_PROC_NET_TCP, encoding="ascii") as table:
        next(table)  # header line
        for row in table:
            fields = row.split()
            local, state = fields[1], fields[3]
            if state != _TCP_LISTEN:
                continue
            address_hex, port_hex = local.split(":")
            # The kernel prints the address as a native-endian 32-bit word.
            address = int(address_hex, 16).to_bytes(4, sys.byteorder)
            if address in (wanted, _ANY_ADDRESS):
                ports.add(int(port_hex, 16))
    return ports


def wait_listening(ports: Iterable[int], host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    """Block until every port in ``ports`` listens on ``host``; raise TimeoutError after
    ``timeout`` seconds.

    Servers that bind in one thread and call ``listen()`` in another (FakeNOS does) may
    refuse a connection made right after ``start()`` returns.
    """
    pending = set(ports)
    deadline = time.monotonic() + timeout
    while True:
        pending -= listening_ports(host)
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"ports {sorted(pending)} on {host} not listening after {timeout:.1f} s"
            )
        time.sleep(0.01)
