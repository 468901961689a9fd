"""Several worker nodes: placement by the scheduler, drain, and failover after SIGKILL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis

from netpulse.nodes.directory import NodeDirectory
from tests.conftest import NODE_NAME, ProcessHandle
from tests.integration.helpers import run, ssh_args, submit, wait_job
from tests.support import processes
from tests.support.receiver import Receiver
from tests.support.sshd import OpenSSHServer


def start_node(name: str, env: dict[str, str], log: Path, redis: Redis) -> ProcessHandle:
    handle = ProcessHandle(["worker", "node", "--name", name, "--threads", "4"], env, log)
    handle.start()
    directory = NodeDirectory(redis)
    processes.wait_until(
        lambda: any(n.name == name and n.alive for n in directory.nodes()), 60, f"node {name}"
    )
    return handle


@pytest.fixture
def second_device() -> Iterator[OpenSSHServer]:
    """A device no node holds yet (its own sshd on its own port)."""
    with OpenSSHServer() as server:
        yield server


def ssh_job(server: OpenSSHServer, command: str, **extra: Any) -> dict[str, Any]:
    return {
        "driver": "paramiko",
        "queue_strategy": "pinned",
        "connection_args": ssh_args(server),
        "command": command,
        **extra,
    }


def node_view(api: httpx.Client, name: str) -> dict[str, Any] | None:
    return next((w for w in api.get("/workers").json() if w["name"] == name), None)


def test_new_device_goes_to_the_least_loaded_node_and_drain_moves_it(
    system: httpx.Client,
    netpulse_env: dict[str, str],
    tmp_session: Path,
    redis: Redis,
    second_device: OpenSSHServer,
    sshd: OpenSSHServer,
) -> None:
    assert run(system, ssh_job(sshd, "true"))["queue"] == f"NodeQ_{NODE_NAME}"  # node 1 has load
    node3 = start_node("test-node-3", netpulse_env, tmp_session / "node3.log", redis)
    try:
        device = f"{second_device.host}:{second_device.port}"
        job = run(system, ssh_job(second_device, "echo placed"))
        assert job["queue"] == "NodeQ_test-node-3"  # the empty node is the least loaded
        view = node_view(system, "test-node-3")
        assert view is not None and device in view["devices"] and view["load"] > 0

        reply = system.delete("/workers/test-node-3")
        assert reply.status_code == 200, reply.text
        assert reply.json()["moved"] == {device: NODE_NAME}
        processes.wait_until(lambda: node3.process.poll() is not None, 30, "node 3 to exit")
        assert node_view(system, "test-node-3") is None

        after = run(system, ssh_job(second_device, "echo moved"))
        assert after["status"] == "finished" and after["queue"] == f"NodeQ_{NODE_NAME}"
        assert device in node_view(system, NODE_NAME)["devices"]
    finally:
        node3.stop()


def test_draining_the_only_node_is_refused(system: httpx.Client) -> None:
    reply = system.delete(f"/workers/{NODE_NAME}")
    assert reply.status_code == 409
    assert "only live node" in reply.json()["detail"]


def test_sigkilled_node_fails_over_within_30_s(
    system: httpx.Client,
    netpulse_env: dict[str, str],
    tmp_session: Path,
    redis: Redis,
    second_device: OpenSSHServer,
    receiver: Receiver,
    sshd: OpenSSHServer,
) -> None:
    assert run(system, ssh_job(sshd, "true"))["queue"] == f"NodeQ_{NODE_NAME}"  # node 1 has load
    node2 = start_node("test-node-2", netpulse_env, tmp_session / "node2.log", redis)
    try:
        warm = run(system, ssh_job(second_device, "true"))
        assert warm["queue"] == "NodeQ_test-node-2"
        running = submit(
            system, ssh_job(second_device, "sleep 30", webhook={"url": receiver.url()})
        )
        processes.wait_until(
            lambda: system.get(f"/jobs/{running['id']}").json()["status"] == "started",
            20,
            "the long job to start",
        )
        queued = [submit(system, ssh_job(second_device, f"echo after-{i}")) for i in range(3)]
        killed_at = time.monotonic()
        node2.process.kill()  # SIGKILL: no clean hand-over

        lost = wait_job(system, running["id"], timeout=45)
        assert lost["status"] == "failed"
        assert lost["result"]["error"]["type"] == "node_lost"
        assert "test-node-2" in lost["result"]["error"]["message"]
        for created in queued:
            job = wait_job(system, created["id"], timeout=45)
            assert job["status"] == "finished", job
            assert job["queue"] == f"NodeQ_{NODE_NAME}"
        assert time.monotonic() - killed_at < 30
        outputs = [wait_job(system, c["id"])["result"]["retval"][0]["stdout"] for c in queued]
        assert [o.strip() for o in outputs] == ["after-0", "after-1", "after-2"]

        [event] = receiver.wait_for("/hook")
        assert event.json()["event_type"] == "job.failed"
        assert event.json()["result"]["error"]["type"] == "node_lost"
        assert node_view(system, "test-node-2") is None
    finally:
        node2.stop()
