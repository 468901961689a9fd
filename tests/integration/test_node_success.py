"""A node stores a finished job in one transaction (worker/success.py): its outcome, its
device slot freed and the device's next job promoted, also when Redis lost its scripts."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from redis import Redis
from rq.rate_limit import RateLimitRegistry

from netpulse.nodes.failover import pinned_limit_key
from tests.conftest import NODE_NAME
from tests.integration.helpers import ssh_args, submit, wait_job
from tests.support.sshd import OpenSSHServer

LOST_SCRIPT = "Redis had lost the release script"


def pinned(server: OpenSSHServer, command: str) -> dict[str, Any]:
    return {
        "driver": "paramiko",
        "queue_strategy": "pinned",
        "connection_args": ssh_args(server),
        "command": command,
    }


def test_finished_jobs_free_their_slot_and_promote_the_next_after_a_script_flush(
    system: httpx.Client, redis: Redis, sshd: OpenSSHServer, tmp_session: Path
) -> None:
    node_log = tmp_session / "node.log"
    assert wait_job(system, submit(system, pinned(sshd, "true"))["id"])["status"] == "finished"
    lost_before = node_log.read_text().count(LOST_SCRIPT)
    # Redis forgets every script (as after a restart): the next job's transaction meets
    # NOSCRIPT at its release and must still free the slot for the jobs queued behind it.
    redis.script_flush()
    ids = [submit(system, pinned(sshd, f"sleep 0.2; echo job-{i}"))["id"] for i in range(3)]
    jobs = [wait_job(system, job_id) for job_id in ids]

    assert [j["status"] for j in jobs] == ["finished"] * 3
    assert {j["queue"] for j in jobs} == {f"NodeQ_{NODE_NAME}"}
    for earlier, later in itertools.pairwise(jobs):  # one at a time, in order
        assert datetime.fromisoformat(later["started_at"]) >= datetime.fromisoformat(
            earlier["ended_at"]
        )
    assert [j["result"]["retval"][0]["stdout"].strip() for j in jobs] == ["job-0", "job-1", "job-2"]

    device = f"{sshd.host}:{sshd.port}"
    registry = RateLimitRegistry(key=pinned_limit_key(device), connection=redis)
    assert redis.zcard(registry.allowed_key) == 0  # every slot freed
    assert redis.zcard(registry.rate_limited_key) == 0  # nobody left waiting
    for job_id in ids:  # the end heartbeat went out with the outcome
        assert redis.hget(f"rq:job:{job_id}", "last_heartbeat") is not None
        assert redis.zscore(f"rq:finished:NodeQ_{NODE_NAME}", job_id) is not None
    assert node_log.read_text().count(LOST_SCRIPT) == lost_before + 1  # that path was taken
