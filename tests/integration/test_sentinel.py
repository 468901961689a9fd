"""Redis high availability: NetPulse follows a Sentinel failover and loses no job and no event.

A real Sentinel set on loopback (tests/support/sentinel.py: one master, one replica, three
``redis-sentinel``) and a NetPulse of the test's own on its ``redis+sentinel://`` URL
(tests/support/stack.py: controller, FIFO pool, worker node, delivery service). Jobs for a
real OpenSSH server, pinned to the node and FIFO, each with a webhook to a real receiver, are
running and waiting when the master changes, gracefully (``SENTINEL FAILOVER``) or because it
was killed by PID.

What is asserted is what NetPulse promises across a failover: every process keeps running,
every job reaches a final state, every job's final event reaches the receiver (at least once;
a repeat carries the same ``webhook-id``), and work submitted after the failover runs, on the
new master.

The master runs with ``min-replicas-to-write 1``, as a set NetPulse relies on must: after
``SENTINEL FAILOVER`` the old master would otherwise take writes for up to 10 s more (until
the Sentinels reconfigure it) and then discard them, jobs and results included. With it the
old master refuses them (``NOREPLICAS``), and NetPulse retries them on the new master
(netpulse/runtime/redis_conn.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from netpulse.webhooks import store
from netpulse.webhooks.events import EVENT_TYPES
from tests.integration.helpers import FINAL, ssh_args, submit
from tests.support import processes
from tests.support.receiver import Receiver
from tests.support.sentinel import Address, SentinelSet
from tests.support.sshd import OpenSSHServer
from tests.support.stack import Stack

#: Generous: a failover takes a few seconds, a worker's back-off up to 5 s.
TIMEOUT = 60
#: Each job's command takes this long, so that jobs are running and waiting (pinned jobs of a
#: device run one at a time, FIFO jobs two at a time) while the master changes.
JOB_SECONDS = 2
PINNED_JOBS = 3
FIFO_JOBS = 4
STRATEGIES = ("pinned", "fifo")


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    with SentinelSet(tmp_path / "sentinel") as redis_set:
        master = redis_set.reported_master()
        assert master is not None
        with redis_set.client(master) as client:
            # Refuse writes once the replica is gone (promoted, or lagging 10 s and more).
            client.config_set("min-replicas-to-write", 1)
            client.config_set("min-replicas-max-lag", 10)
        yield redis_set


@pytest.fixture
def stack(netpulse_env: dict[str, str], tmp_path: Path, sentinels: SentinelSet) -> Iterator[Stack]:
    with Stack(netpulse_env, tmp_path / "stack", redis_url=sentinels.url) as system:
        yield system


@pytest.fixture
def device() -> Iterator[OpenSSHServer]:
    with OpenSSHServer() as server:
        yield server


def job(server: OpenSSHServer, command: str, strategy: str, webhook_url: str) -> dict[str, Any]:
    return {
        "driver": "paramiko",
        "queue_strategy": strategy,
        "connection_args": ssh_args(server),
        "command": command,
        "webhook": {"url": webhook_url},
    }


def jobs_now(api: httpx.Client, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each job as the API reports it now (a 503 while Redis is away counts as "unknown")."""
    found: dict[str, dict[str, Any]] = {}
    for job_id in ids:
        reply = api.get(f"/jobs/{job_id}")
        if reply.status_code == 200:
            found[job_id] = reply.json()
    return found


def trace(stack: Stack, job_id: str) -> dict[str, Any]:
    """Where a job and its event are in Redis (the new master), for a failure message."""
    with stack.redis as conn:
        origin = (conn.hget(f"rq:job:{job_id}", "origin") or b"?").decode()
        queue = f"rq:queue:{origin}"
        delivery = (conn.get(store.final_key(job_id)) or b"").decode()
        record = conn.hmget(store.delivery_key(delivery), "state", "attempts") if delivery else []
        return {
            "status": conn.hget(f"rq:job:{job_id}", "status"),
            "queue": origin,
            "in_queue": job_id.encode() in conn.lrange(queue, 0, -1),
            "in_intermediate": job_id.encode() in conn.lrange(f"{queue}:intermediate", 0, -1),
            "started": [m for m in conn.zrange(f"rq:wip:{origin}", 0, -1) if job_id in str(m)],
            "delivery": delivery,
            "delivery_state": record,
            "due": [k for k in conn.keys(store.PREFIX + "due*") if conn.zscore(k, delivery)],
        }


def wait_final(api: httpx.Client, ids: list[str], stack: Stack) -> dict[str, dict[str, Any]]:
    """Every job once it is final, read through the API."""

    def all_final() -> dict[str, dict[str, Any]] | None:
        found = jobs_now(api, ids)
        if len(found) == len(ids) and all(j["status"] in FINAL for j in found.values()):
            return found
        return None

    try:
        return processes.wait_until(all_final, TIMEOUT, "every job to end", interval=0.2)
    except AssertionError as exc:
        now = jobs_now(api, ids)
        stuck = {i: trace(stack, i) for i in ids if now.get(i, {}).get("status") not in FINAL}
        raise AssertionError(f"{exc}; not final: {stuck}") from None


def ended(job: dict[str, Any]) -> datetime:
    at = datetime.fromisoformat(job["ended_at"])
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def events_by_job(receiver: Receiver) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Final events the receiver got, by job id: (webhook-id header, body) per request."""
    by_job: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for request in receiver.on("/hook"):
        body = request.json()
        by_job.setdefault(body["id"], []).append((request.headers["webhook-id"], body))
    return by_job


def wait_events(
    receiver: Receiver, ids: list[str], stack: Stack
) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    try:
        return processes.wait_until(
            lambda: (got := events_by_job(receiver)).keys() >= set(ids) and got,
            TIMEOUT,
            "every job's final event at the receiver",
            interval=0.1,
        )
    except AssertionError as exc:
        missing = sorted(set(ids) - events_by_job(receiver).keys())
        raise AssertionError(f"{exc}; no event for {[trace(stack, i) for i in missing]}") from None


def submit_through(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    """Submit once the controller answers: right after a promotion it may still say 503
    (Redis away, with Retry-After) until its connection has found the new master; anything
    else than 201 or 503 fails the test."""

    def attempt() -> dict[str, Any] | None:
        reply = api.post("/device/exec", json=body)
        if reply.status_code == 503:
            assert reply.headers.get("retry-after"), reply.text
            return None
        assert reply.status_code == 201, reply.text
        return reply.json()

    return processes.wait_until(attempt, TIMEOUT, "the controller to accept a job", interval=0.2)


def check_through_failover(
    stack: Stack,
    sentinels: SentinelSet,
    device: OpenSSHServer,
    receiver: Receiver,
    change_master: Callable[[], Address],
    may_fail: bool,
) -> None:
    with stack.client() as api:
        _check_through_failover(api, stack, sentinels, device, receiver, change_master, may_fail)


def _check_through_failover(
    api: httpx.Client,
    stack: Stack,
    sentinels: SentinelSet,
    device: OpenSSHServer,
    receiver: Receiver,
    change_master: Callable[[], Address],
    may_fail: bool,
) -> None:
    url = receiver.url("/hook")
    pinned = [
        submit(api, job(device, f"sleep {JOB_SECONDS}; echo pinned-{i}", "pinned", url))["id"]
        for i in range(PINNED_JOBS)
    ]
    fifo = [
        submit(api, job(device, f"sleep {JOB_SECONDS}; echo fifo-{i}", "fifo", url))["id"]
        for i in range(FIFO_JOBS)
    ]
    before = pinned + fifo
    # The master changes while one pinned and two FIFO jobs run and the others wait.
    processes.wait_until(
        lambda: all(
            any(jobs_now(api, group).get(i, {}).get("status") == "started" for i in group)
            for group in (pinned, fifo)
        ),
        TIMEOUT,
        "a pinned and a FIFO job to start",
        interval=0.1,
    )
    old = change_master()
    changed_at = datetime.now(UTC)
    new = sentinels.wait_for_new_master(old, timeout=TIMEOUT)

    after = [submit_through(api, job(device, f"echo after-{s}", s, url))["id"] for s in STRATEGIES]
    ids = before + after
    done = wait_final(api, ids, stack)
    for job_id in after:
        assert done[job_id]["status"] == "finished", done[job_id]
        assert done[job_id]["result"]["retval"][0]["stdout"].startswith("after-")
    # A graceful failover costs no job its result. A crash may lose what the master had not
    # yet replicated (asynchronous replication): a job whose end was lost ends failed.
    allowed = {"finished", "failed"} if may_fail else {"finished"}
    for job_id in before:
        assert done[job_id]["status"] in allowed, done[job_id]
    for group in (pinned, fifo):  # and it did cut through work of both kinds
        assert any(ended(done[i]) > changed_at for i in group), [done[i] for i in group]

    events = wait_events(receiver, ids, stack)
    webhook_ids = set()
    for job_id in ids:
        deliveries = events[job_id]
        assert len({webhook_id for webhook_id, _ in deliveries}) == 1, deliveries
        webhook_ids.add(deliveries[0][0])
        # Every delivery is the job's final event, as the API reports the job.
        expected = EVENT_TYPES[done[job_id]["status"]]
        assert {body["event_type"] for _, body in deliveries} == {expected}, deliveries
    assert len(webhook_ids) == len(ids)

    # The work after the failover is on the new master, not on a node the Sentinels left.
    with sentinels.client(new) as client:
        assert client.info("replication")["role"] == "master"
        assert all(client.exists(f"rq:job:{job_id}") for job_id in after)
    for name, process in stack.procs.items():
        assert process.poll() is None, f"{name} exited ({process.returncode})"


def test_netpulse_follows_a_sentinel_failover(
    stack: Stack, sentinels: SentinelSet, device: OpenSSHServer, receiver: Receiver
) -> None:
    check_through_failover(stack, sentinels, device, receiver, sentinels.failover, False)


def test_netpulse_follows_the_promotion_after_the_master_is_killed(
    stack: Stack, sentinels: SentinelSet, device: OpenSSHServer, receiver: Receiver
) -> None:
    check_through_failover(stack, sentinels, device, receiver, sentinels.kill_master, True)
