"""A node lets go of a device it holds no session for and that has no job (an unreachable
device), after ``node.device_release_seconds`` (2 s in the tests); a device with a warm
session stays. ``GET /workers`` and the scheduler's load then tell the truth."""

from __future__ import annotations

from typing import Any

import httpx

from netpulse.runtime.ports import free_port
from tests.integration.helpers import run, ssh_args
from tests.support import processes


def _held(system: httpx.Client) -> set[str]:
    return {
        device
        for worker in system.get("/workers").json()
        if worker.get("type") == "node" or "devices" in worker
        for device in worker.get("devices", [])
    }


def _pinned_to_closed_port(port: int) -> dict[str, Any]:
    """A pinned job to a port where nothing listens (it fails at once)."""
    return {
        "driver": "paramiko",
        "connection_args": {"host": "127.0.0.1", "port": port, "username": "u", "password": "p"},
        "command": "true",
        "queue_strategy": "pinned",
    }


def test_an_unreachable_device_leaves_the_node_and_a_warm_one_stays(
    system: httpx.Client, sshd: Any
) -> None:
    port = free_port()  # nothing listens there
    unreachable = f"127.0.0.1:{port}"
    failed = run(system, _pinned_to_closed_port(port))
    assert failed["status"] == "failed"
    # Held right after its job (the grace starts when the node first sees it idle).
    assert unreachable in _held(system)
    warm = run(
        system,
        {
            "driver": "paramiko",
            "connection_args": ssh_args(sshd),
            "command": "true",
            "queue_strategy": "pinned",
        },
    )
    assert warm["status"] == "finished"
    warm_device = f"{ssh_args(sshd)['host']}:{ssh_args(sshd)['port']}"
    assert warm_device in _held(system)
    processes.wait_until(
        lambda: unreachable not in _held(system),
        30,
        f"{unreachable} to leave the node's devices",
        interval=0.2,
    )
    assert warm_device in _held(system)  # its session is open: kept
    # Its next job places it again.
    again = run(system, _pinned_to_closed_port(port))
    assert again["status"] == "failed" and again["result"]["error"]["type"] == "connection"
