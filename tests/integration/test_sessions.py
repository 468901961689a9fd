"""Warm sessions on a worker node: reuse by identity, recovery, ordering, caps, cancel."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from typing import Any

import httpx
import pytest

from netpulse.models.request import ExecutionRequest
from netpulse.sessions.pool import SessionLostError, SessionPool, StoppedBeforeReadError
from tests.conftest import NODE_NAME
from tests.integration.helpers import device, run, ssh_args, submit, wait_job
from tests.support import processes


def pinned_ssh(sshd: Any, command: str, **extra: Any) -> dict[str, Any]:
    return {
        "driver": "paramiko",
        "queue_strategy": "pinned",
        "connection_args": ssh_args(sshd),
        "command": command,
        **extra,
    }


def reused(job: dict[str, Any]) -> bool:
    return job["result"]["retval"][0]["metadata"]["session_reused"]


def kill_device_sessions(sshd: Any) -> None:
    """Kill the sshd processes serving our user (the device side of warm sessions)."""
    subprocess.run(["pkill", "-KILL", "-f", f"sshd: {sshd.username}"], check=False)


def test_second_job_reuses_the_netmiko_session(system: httpx.Client, lab: dict) -> None:
    dev = device(lab, "arista_eos")
    body = {"driver": "netmiko", "connection_args": dev.connection_args(), "command": "show clock"}
    run(system, body)
    job = run(system, body)
    assert job["status"] == "finished" and job["queue"] == f"NodeQ_{NODE_NAME}"
    assert reused(job) is True


def test_other_credentials_never_share_a_session(system: httpx.Client, lab: dict) -> None:
    dev = device(lab, "arista_eos")
    body = {"driver": "netmiko", "connection_args": dev.connection_args(), "command": "show clock"}
    run(system, body)
    other = {**body, "connection_args": {**dev.connection_args(), "secret": "another-secret"}}
    first_other = run(system, other)
    assert first_other["status"] == "finished"
    assert reused(first_other) is False
    assert reused(run(system, other)) is True


def test_dead_session_is_reopened_before_the_next_job(system: httpx.Client, sshd: Any) -> None:
    assert run(system, pinned_ssh(sshd, "true"))["status"] == "finished"
    kill_device_sessions(sshd)
    job = run(system, pinned_ssh(sshd, "echo again"))
    assert job["status"] == "finished", job
    assert reused(job) is False
    assert job["result"]["retval"][0]["stdout"].strip() == "again"


def test_session_dying_mid_job_fails_it_and_says_so(system: httpx.Client, sshd: Any) -> None:
    run(system, pinned_ssh(sshd, "true"))  # warm
    created = submit(system, pinned_ssh(sshd, "sleep 10; echo never"))
    processes.wait_until(
        lambda: system.get(f"/jobs/{created['id']}").json()["status"] == "started", 20, "start"
    )
    time.sleep(0.3)  # let the command reach the device before we cut the session
    kill_device_sessions(sshd)
    job = wait_job(system, created["id"])
    assert job["status"] == "failed"
    assert job["result"]["error"]["type"] == "session_lost"
    assert "not re-sent" in job["result"]["error"]["message"]
    assert run(system, pinned_ssh(sshd, "true"))["status"] == "finished"


def test_jobs_for_one_device_run_one_at_a_time_in_submission_order(
    system: httpx.Client, sshd: Any
) -> None:
    """Four clients submit five jobs each at the same time to one device."""
    path = f"/tmp/netpulse-order-{uuid.uuid4().hex}"
    ids: list[str] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        for n in range(5):
            tag = f"{c}.{n}"
            cmd = f"echo start {tag} >> {path}; sleep 0.05; echo end {tag} >> {path}"
            job_id = submit(system, pinned_ssh(sshd, cmd))["id"]
            with lock:
                ids.append(job_id)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(wait_job(system, job_id)["status"] == "finished" for job_id in ids)
    out = run(system, pinned_ssh(sshd, f"cat {path}; rm -f {path}"))["result"]["retval"][0]
    events = [e.split() for e in out["stdout"].splitlines() if e]
    assert len(events) == 40
    # One at a time: every start is directly followed by its own end.
    pairs = list(zip(events[::2], events[1::2], strict=True))
    assert all(s == ["start", e[1]] and e[0] == "end" for s, e in pairs), events
    # Each client's jobs ran in the order that client submitted them.
    ran = [s[1] for s, _ in pairs]
    for c in range(4):
        mine = [int(tag.split(".")[1]) for tag in ran if tag.startswith(f"{c}.")]
        assert mine == list(range(5)), ran


def test_fifo_jobs_are_capped_at_two_per_device(system: httpx.Client, sshd: Any) -> None:
    body = pinned_ssh(sshd, "sleep 0.5", queue_strategy="fifo")
    ids = [submit(system, body)["id"] for _ in range(4)]
    jobs = [wait_job(system, i) for i in ids]
    spans = [(j["started_at"], j["ended_at"]) for j in jobs]
    for start, _ in spans:
        running = sum(1 for s, e in spans if s <= start < e)
        assert running <= 2, spans


def test_cancel_a_running_pinned_job_discards_its_session(system: httpx.Client, sshd: Any):
    run(system, pinned_ssh(sshd, "true"))
    created = submit(system, pinned_ssh(sshd, "sleep 15"))
    processes.wait_until(
        lambda: system.get(f"/jobs/{created['id']}").json()["status"] == "started", 20, "start"
    )
    assert system.delete(f"/jobs/{created['id']}").status_code == 200
    job = wait_job(system, created["id"])
    assert job["status"] == "stopped"
    assert job["result"]["type"] == 3
    after = run(system, pinned_ssh(sshd, "true"))
    assert after["status"] == "finished" and reused(after) is False


def _request(sshd: Any, **args: Any) -> ExecutionRequest:
    return ExecutionRequest.model_validate(
        {
            "driver": "paramiko",
            "connection_args": {
                "host": sshd.host,
                "port": sshd.port,
                "username": sshd.username,
                "key_filename": str(sshd.key_filename),
                **args,
            },
            "command": "echo pooled",
        }
    )


def test_pool_closes_idle_sessions_and_keeps_busy_ones(sshd: Any) -> None:
    pool = SessionPool(idle_timeout=0.2, probe_interval=60)
    try:
        with pool.lease(_request(sshd)) as driver:
            assert driver.execute(_request(sshd))[0].stdout.strip() == "pooled"
        pool.probe_once()
        assert pool.stats()["sessions"] == 1  # not idle long enough yet
        time.sleep(0.3)  # let the idle timeout pass
        pool.probe_once()
        assert pool.stats()["sessions"] == 0
    finally:
        pool.close_all()


def test_pool_reports_a_session_lost_mid_job(sshd: Any) -> None:
    pool = SessionPool()
    try:
        with pool.lease(_request(sshd)) as driver:
            driver.execute(_request(sshd))
        with pytest.raises(SessionLostError), pool.lease(_request(sshd)) as driver:
            driver.disconnect()  # the session dies under the job
            driver.execute(_request(sshd))
        assert pool.stats()["sessions"] == 0
    finally:
        pool.close_all()


def test_a_stop_while_connecting_fails_the_lease_before_any_command(sshd: Any) -> None:
    """DELETE can arrive while the job's session is still being opened: nothing to break yet,
    so the pool remembers the stop and the lease fails once the connection is made."""
    pool = SessionPool()
    try:
        assert pool.interrupt("job-1") is False  # no session leased to it yet
        with pytest.raises(StoppedBeforeReadError), pool.lease(_request(sshd), "job-1"):
            pytest.fail("the stopped job got its session")
        assert pool.stats()["sessions"] == 0  # the session it opened is not kept
        pool.forget_stop("job-1")
        with pool.lease(_request(sshd), "job-2") as driver:  # other jobs are not affected
            assert driver.execute(_request(sshd))[0].exit_status == 0
    finally:
        pool.close_all()


@pytest.fixture
def fastsim() -> Any:
    """One fast simulated device (asyncssh: strict about SSH messages)."""
    import json
    import sys

    from netpulse.runtime.ports import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "netpulse.lab.fastsim", "--count", "1", "--base-port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        [dev] = json.loads(proc.stdout.readline())
        yield dev
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_keepalive_keeps_a_session_to_a_strict_ssh_server(fastsim: dict[str, Any]) -> None:
    req = ExecutionRequest.model_validate(
        {
            "driver": "netmiko",
            "connection_args": {k: v for k, v in fastsim.items() if k != "name"},
            "command": "show clock",
        }
    )
    pool = SessionPool()
    try:
        with pool.lease(req) as driver:
            driver.execute(req)
        for _ in range(3):
            pool.probe_once()  # sends a keepalive on the idle session
        with pool.lease(req) as driver:
            assert driver.session_reused is True
            [result] = driver.execute(req)
        assert result.exit_status == 0 and "UTC" in result.stdout
    finally:
        pool.close_all()
