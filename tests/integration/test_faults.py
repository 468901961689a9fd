"""Faults an operator meets: Redis restarts, and nodes and FIFO pools killed by PID and
started again. Each test runs a NetPulse of its own (tests/support/stack.py) on a private
append-only Redis, so restarting Redis or killing a process disturbs no other test.

What is asserted is what NetPulse guarantees: every process keeps running, every job reaches
a final state, and every job with a webhook gets exactly one final event.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from netpulse.nodes.directory import NodeDirectory
from netpulse.worker.pool_directory import PoolDirectory
from tests.integration.helpers import FINAL, ssh_args, submit
from tests.support import processes
from tests.support.receiver import Receiver
from tests.support.sshd import OpenSSHServer
from tests.support.stack import Stack

#: How long Redis stays away in the restart test: longer than the 4 s after which a node used
#: to exit, and than the 10 s heartbeat lifetime (every heartbeat key expires meanwhile).
OUTAGE_SECONDS = 12


@pytest.fixture
def stack(netpulse_env: dict[str, str], tmp_path: Path) -> Iterator[Stack]:
    with Stack(netpulse_env, tmp_path / "stack") as system:
        yield system


@pytest.fixture
def device() -> Iterator[OpenSSHServer]:
    with OpenSSHServer() as server:
        yield server


def job(server: OpenSSHServer, command: str, strategy: str, **extra: Any) -> dict[str, Any]:
    return {
        "driver": "paramiko",
        "queue_strategy": strategy,
        "connection_args": ssh_args(server),
        "command": command,
        **extra,
    }


def status_of(api: httpx.Client, job_id: str) -> str:
    return api.get(f"/jobs/{job_id}").json()["status"]


def final(api: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """The job once final; polls, since a job ended while the controller lost Redis may have
    published its end before the controller subscribed again."""
    found = processes.wait_until(
        lambda: (j := api.get(f"/jobs/{job_id}").json())["status"] in FINAL and j,
        timeout,
        f"job {job_id} to end",
        interval=0.2,
    )
    return found


def events_of(receiver: Receiver, job_id: str) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.on("/hook") if r.json()["id"] == job_id]


def wait_log(stack: Stack, name: str, text: str, timeout: float = 30) -> None:
    processes.wait_until(lambda: text in stack.log_text(name), timeout, f"{name} to log {text!r}")


def test_every_process_lives_through_a_redis_restart_and_jobs_run_after(
    stack: Stack, device: OpenSSHServer, receiver: Receiver
) -> None:
    api = stack.client()
    webhook = {"url": receiver.url()}
    strategies = ("pinned", "fifo")
    before = [submit(api, job(device, "echo before", s, webhook=webhook)) for s in strategies]
    for created in before:
        assert final(api, created["id"])["status"] == "finished"

    stack.redis_server.stop()
    for name in ("node", "fifo"):
        wait_log(stack, name, "Redis is unreachable")
    # The outage itself is the scenario: Redis stays away this long, every process meanwhile.
    time.sleep(OUTAGE_SECONDS)
    for name, process in stack.procs.items():
        assert process.poll() is None, f"{name} exited during the outage ({process.returncode})"
    away = api.get("/jobs")
    assert away.status_code == 503, away.text
    assert "unreachable" in away.json()["detail"] and away.headers["retry-after"]
    stack.redis_server.start()
    for name in ("node", "fifo"):
        wait_log(stack, name, "Redis answers again")

    after = [submit(api, job(device, "echo after", s, webhook=webhook)) for s in strategies]
    for created in after:
        done = final(api, created["id"])
        assert done["status"] == "finished", done
        assert done["result"]["retval"][0]["stdout"].strip() == "after"
    receiver.wait_for("/hook", count=4, timeout=30)
    for created in before + after:
        assert [e["event_type"] for e in events_of(receiver, created["id"])] == ["job.completed"]
    for name, process in stack.procs.items():
        assert process.poll() is None, f"{name} exited after the outage"
    # One line per part of a process when the outage starts (the node, each of its 4 job
    # threads; the pool, each of its 2 workers; the delivery service and its heartbeat), not
    # one per retry: over 12 s of capped back-off each part retried many times.
    for name, parts in (("node", 5), ("fifo", 3), ("webhooks", 2)):
        text = stack.log_text(name)
        assert 1 <= text.count("Redis is unreachable") <= parts, text[-3000:]
        assert "could not connect to Redis instance" not in text, text[-3000:]


@pytest.mark.parametrize("strategy", ["pinned", "fifo"])
def test_a_job_that_ends_while_redis_is_away_keeps_its_result_and_event(
    stack: Stack, device: OpenSSHServer, receiver: Receiver, strategy: str
) -> None:
    api = stack.client()
    created = submit(
        api, job(device, "sleep 2; echo survived", strategy, webhook={"url": receiver.url()})
    )
    processes.wait_until(lambda: status_of(api, created["id"]) == "started", 30, "the job start")
    stack.redis_server.stop()
    worker_log = "node" if strategy == "pinned" else "fifo"
    # The job's command ends during the outage; its worker then waits to store the outcome.
    wait_log(stack, worker_log, "storing a job's outcome: Redis is unreachable", timeout=30)
    stack.redis_server.start()

    done = final(api, created["id"])
    assert done["status"] == "finished", done
    assert done["result"]["retval"][0]["stdout"].strip() == "survived"
    [event] = receiver.wait_for("/hook", timeout=30)
    assert event.json()["event_type"] == "job.completed"
    assert event.json()["id"] == created["id"]


def test_a_node_restarted_under_its_name_recovers_what_its_previous_life_left(
    stack: Stack, device: OpenSSHServer, receiver: Receiver
) -> None:
    api = stack.client()
    webhook = {"url": receiver.url()}
    assert final(api, submit(api, job(device, "true", "pinned"))["id"])["status"] == "finished"
    running = submit(api, job(device, "sleep 300", "pinned", webhook=webhook))
    processes.wait_until(lambda: status_of(api, running["id"]) == "started", 30, "the long job")
    waiting = [submit(api, job(device, f"echo next-{i}", "pinned")) for i in range(2)]
    old_pid = stack.procs["node"].pid
    stack.procs["node"].kill()  # SIGKILL: no hand-over, its heartbeat still alive
    stack.procs["node"].wait()

    stack.start("node")  # the same name, right away (as `netpulse up` run again would)
    lost = final(api, running["id"], timeout=30)
    assert lost["status"] == "failed"
    assert lost["result"]["error"]["type"] == "node_lost"
    for i, created in enumerate(waiting):
        done = final(api, created["id"], timeout=30)
        assert done["status"] == "finished", done
        assert done["result"]["retval"][0]["stdout"].strip() == f"next-{i}"
    [event] = receiver.wait_for("/hook", timeout=30)
    assert event.json()["event_type"] == "job.failed"
    assert event.json()["result"]["error"]["type"] == "node_lost"
    node = NodeDirectory(stack.redis).registration(stack.node_name)
    assert node is not None and node.alive and node.pid != old_pid
    # New work for the device runs too.
    fresh = final(api, submit(api, job(device, "echo fresh", "pinned"))["id"])
    assert fresh["status"] == "finished"


def test_a_second_live_node_of_the_same_name_is_refused(stack: Stack) -> None:
    second = processes.start(
        ["worker", "node", "--name", stack.node_name], stack.env, stack.root / "second-node.log"
    )
    try:
        assert second.wait(timeout=60) == 2
    finally:
        processes.stop(second)
    assert "already running" in (stack.root / "second-node.log").read_text()
    assert stack.procs["node"].poll() is None
    node = NodeDirectory(stack.redis).registration(stack.node_name)
    assert node is not None and node.alive and node.pid == stack.procs["node"].pid


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_fifo_pool_restarted_fails_its_running_job_at_once(
    stack: Stack, device: OpenSSHServer, receiver: Receiver
) -> None:
    api = stack.client()
    running = submit(api, job(device, "sleep 300", "fifo", webhook={"url": receiver.url()}))
    processes.wait_until(lambda: status_of(api, running["id"]) == "started", 30, "the long job")
    pool = stack.procs["fifo"]
    tree = _descendants(pool.pid) | {pool.pid}
    for pid in tree:  # the whole pool at once, work-horse included, as a crashed host would
        os.kill(pid, signal.SIGKILL)
    pool.wait()
    processes.wait_until(lambda: not any(_alive(p) for p in tree), 10, "the old pool to die")

    stack.start("fifo")
    lost = final(api, running["id"], timeout=30)
    assert lost["status"] == "failed"
    assert lost["result"]["error"]["type"] == "worker_lost"
    [event] = receiver.wait_for("/hook", timeout=30)
    assert event.json()["event_type"] == "job.failed"
    live = PoolDirectory(stack.redis).live_pools()
    assert [p.pid for p in live] == [stack.procs["fifo"].pid]
    after = final(api, submit(api, job(device, "echo again", "fifo"))["id"])
    assert after["status"] == "finished"


def test_fifo_workers_die_with_their_pool(stack: Stack) -> None:
    pool = stack.procs["fifo"]
    processes.wait_until(lambda: len(_descendants(pool.pid)) >= 2, 30, "the pool's workers")
    workers = _descendants(pool.pid)
    pool.kill()  # SIGKILL of the pool process alone
    pool.wait()
    processes.wait_until(
        lambda: not any(_alive(p) for p in workers), 30, "the workers to follow their pool"
    )


def test_a_redis_that_lost_its_data_is_said_in_the_log_and_work_goes_on(
    netpulse_env: dict[str, str], tmp_path: Path, device: OpenSSHServer
) -> None:
    with Stack(netpulse_env, tmp_path / "stack", appendonly=False) as stack:
        api = stack.client()
        stack.redis_server.stop()  # no append-only file: everything in Redis is gone
        wait_log(stack, "node", "Redis is unreachable")
        stack.redis_server.start()
        for name in ("node", "fifo"):
            wait_log(stack, name, "jobs and deliveries stored before that are gone", timeout=30)
        stack.wait_ready()
        for strategy in ("pinned", "fifo"):
            done = final(api, submit(api, job(device, "echo anew", strategy))["id"])
            assert done["status"] == "finished", done
        for name, process in stack.procs.items():
            assert process.poll() is None, f"{name} exited"


def test_processes_stop_on_request_while_redis_is_away(stack: Stack) -> None:
    pool, node = stack.procs["fifo"], stack.procs["node"]
    processes.wait_until(lambda: len(_descendants(pool.pid)) >= 2, 30, "the pool's workers")
    workers = _descendants(pool.pid)
    stack.redis_server.stop()
    for name in ("node", "fifo"):
        wait_log(stack, name, "Redis is unreachable")
    pool.send_signal(signal.SIGTERM)
    node.send_signal(signal.SIGTERM)
    assert pool.wait(timeout=30) == 0
    assert node.wait(timeout=45) == 0
    processes.wait_until(lambda: not any(_alive(p) for p in workers), 10, "the pool's workers")
    assert "its devices stay assigned" in stack.log_text("node")
