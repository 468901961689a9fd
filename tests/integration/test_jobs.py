"""Jobs end to end: controller -> Redis (RQ) -> FIFO workers -> FakeNOS / OpenSSH -> result."""

from __future__ import annotations

import time
from typing import Any

import httpx
from redis import Redis
from rq import Queue
from rq.job import Job

from netpulse.runtime.ports import free_port
from tests.conftest import API_KEY, NODE_NAME
from tests.integration.helpers import device, run, ssh_args, submit, unreachable_job, wait_job


def netmiko_body(dev: Any, command: Any, **extra: Any) -> dict[str, Any]:
    return {
        "driver": "netmiko",
        "connection_args": dev.connection_args(),
        "command": command,
        **extra,
    }


def test_show_version_on_cisco_ios(system: httpx.Client, lab: dict) -> None:
    dev = device(lab, "cisco_ios")
    job = run(system, netmiko_body(dev, "show version", enable_mode=True))
    assert job["status"] == "finished", job
    assert job["queue"] == f"NodeQ_{NODE_NAME}"  # netmiko is pinned by default
    assert job["result"]["type"] == 1
    [item] = job["result"]["retval"]
    assert item["command"] == "show version"
    assert item["exit_status"] == 0
    assert "Cisco" in item["stdout"]
    assert item["metadata"]["host"] == dev.host
    assert job["duration"] > 0 and job["queue_time"] >= 0


def test_rejected_command_finishes_with_nonzero_exit(system: httpx.Client, lab: dict) -> None:
    dev = device(lab, "cisco_ios")
    job = run(system, netmiko_body(dev, ["show clock", "show bogus thing"], enable_mode=True))
    assert job["status"] == "finished"
    first, second = job["result"]["retval"]
    assert first["exit_status"] == 0
    assert second["exit_status"] != 0
    assert "Invalid input" in second["stderr"]


def test_config_push_on_arista(system: httpx.Client, lab: dict) -> None:
    dev = device(lab, "arista_eos")
    body = {
        "driver": "netmiko",
        "connection_args": dev.connection_args(),
        "config": ["interface Ethernet1", "description netpulse"],
        "enable_mode": True,
    }
    job = run(system, body)
    assert job["status"] == "finished", job
    assert [r["command"] for r in job["result"]["retval"]] == body["config"]
    assert all(r["exit_status"] == 0 for r in job["result"]["retval"])


def test_unreachable_device_fails_and_names_host_and_port(system: httpx.Client) -> None:
    port = free_port()
    body = unreachable_job(port)
    job = run(system, body)
    assert job["status"] == "failed"
    assert job["result"]["type"] == 2
    assert f"127.0.0.1:{port}" in job["result"]["error"]["message"]


def test_wrong_password_fails_as_authentication(system: httpx.Client, lab: dict) -> None:
    dev = device(lab, "cisco_ios")
    args = {**dev.connection_args(), "password": "definitely-wrong"}
    job = run(system, {"driver": "netmiko", "connection_args": args, "command": "show clock"})
    assert job["status"] == "failed"
    assert job["result"]["error"]["type"] == "authentication"
    assert "definitely-wrong" not in str(job)


def paramiko_body(sshd: Any, command: Any, **extra: Any) -> dict[str, Any]:
    return {
        "driver": "paramiko",
        "connection_args": ssh_args(sshd),
        "command": command,
        **extra,
    }


def test_paramiko_reports_real_exit_status_and_stderr(system: httpx.Client, sshd: Any) -> None:
    job = run(system, paramiko_body(sshd, ["echo hello", "echo oops >&2; exit 3"]))
    assert job["status"] == "finished", job
    ok, bad = job["result"]["retval"]
    assert ok["stdout"].strip() == "hello" and ok["exit_status"] == 0
    assert bad["exit_status"] == 3 and bad["stderr"].strip() == "oops"


def test_execution_timeout_fails_the_job(system: httpx.Client, sshd: Any) -> None:
    job = run(system, paramiko_body(sshd, "sleep 20", execution_timeout=1))
    assert job["status"] == "failed"
    assert job["result"]["error"]["type"] == "timeout"
    assert "1 s" in job["result"]["error"]["message"]


def test_wait_returns_when_the_job_ends_not_when_the_wait_ends(
    system: httpx.Client, sshd: Any
) -> None:
    created = submit(system, paramiko_body(sshd, "sleep 1; echo done"))
    started = time.monotonic()
    job = wait_job(system, created["id"], timeout=30)
    elapsed = time.monotonic() - started
    assert job["status"] == "finished"
    assert elapsed < 15, f"wait returned after {elapsed:.1f} s for a ~1 s job"


def test_jobs_are_rq_jobs_with_request_ttls(system: httpx.Client, sshd: Any, redis: Redis) -> None:
    created = submit(
        system, paramiko_body(sshd, "true", ttl=77, result_ttl=120, execution_timeout=9)
    )
    job = Job.fetch(created["id"], connection=redis)
    assert job.ttl == 77 and job.result_ttl == 120 and job.timeout == 9
    assert job.kwargs["req"].connection_args.host == sshd.host
    wait_job(system, created["id"])
    assert created["id"] in Queue("FifoQ", connection=redis).finished_job_registry.get_job_ids()


def test_list_and_filter_jobs(system: httpx.Client, sshd: Any) -> None:
    created = run(system, paramiko_body(sshd, "true"))
    listed = system.get("/jobs", params={"status": "finished", "host": sshd.host}).json()
    assert created["id"] in {j["id"] for j in listed}
    assert system.get("/jobs", params={"status": "nonsense"}).status_code == 400


def test_cancel_a_queued_job(system: httpx.Client, sshd: Any, redis: Redis) -> None:
    # Keep every worker busy so the next job stays queued while it is cancelled.
    blockers = [submit(system, paramiko_body(sshd, "sleep 4"))["id"] for _ in range(4)]
    job_id = submit(system, paramiko_body(sshd, "echo should-not-run"))["id"]
    reply = system.delete(f"/jobs/{job_id}")
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"id": job_id}
    job = wait_job(system, job_id)
    assert job["status"] == "canceled"
    assert job_id not in Queue("FifoQ", connection=redis).get_job_ids()
    assert system.delete(f"/jobs/{job_id}").status_code == 409
    for blocker in blockers:
        wait_job(system, blocker)


def test_workers_and_stats(system: httpx.Client) -> None:
    workers = system.get("/workers").json()
    fifo = [w for w in workers if w["kind"] == "fifo"]
    nodes = [w for w in workers if w["kind"] == "node"]
    assert len(fifo) >= 4 and all("FifoQ" in w["queues"] for w in fifo)
    assert [n["name"] for n in nodes] == [NODE_NAME]
    assert nodes[0]["capacity"] == 500 and nodes[0]["status"] == "alive"
    stats = system.get("/system/stats").json()
    assert stats["workers"]["fifo"] == len(fifo)
    assert stats["status"] == "online"


def test_public_client_collects_the_same_output(
    controller_url: str, fifo_workers: None, lab: dict
) -> None:
    from netpulse_sdk import NetPulseClient

    dev = device(lab, "cisco_ios")
    args = dev.connection_args()
    host = args.pop("host")
    with NetPulseClient(base_url=controller_url, api_key=API_KEY) as client:
        job = client.collect(host, "show version", connection_args=args, enable_mode=True)
        job.wait()
        results = job.results()
    assert len(results) == 1 and results[0].ok, results
    assert "Cisco" in results[0].stdout


def test_config_push_with_save_on_cisco_ios(system: httpx.Client, lab: dict) -> None:
    dev = device(lab, "cisco_ios")
    body = {
        "driver": "netmiko",
        "connection_args": dev.connection_args(),
        "config": ["interface GigabitEthernet0/1", "description uplink"],
        "enable_mode": True,
        "save": True,
    }
    job = run(system, body)
    assert job["status"] == "finished", job
    interface, description, save = job["result"]["retval"]
    assert interface["command"] == "interface GigabitEthernet0/1"
    assert description["exit_status"] == 0 and "description uplink" in description["stdout"]
    assert save["command"] == "save" and save["exit_status"] == 0


def test_rejected_config_line_is_reported(system: httpx.Client, lab: dict) -> None:
    dev = device(lab, "cisco_ios")
    body = {
        "driver": "netmiko",
        "connection_args": dev.connection_args(),
        "config": ["interface GigabitEthernet0/2", "bogus setting 1", "description after"],
        "enable_mode": True,
        "save": True,
    }
    job = run(system, body)
    assert job["status"] == "finished"
    accepted, rejected, skipped = job["result"]["retval"]  # and no save after a rejected line
    assert accepted["exit_status"] == 0
    assert rejected["exit_status"] == 1 and "Invalid input" in rejected["stderr"]
    assert skipped["exit_status"] == -1 and "not run" in skipped["stderr"]


def test_device_test_reports_prompt_or_reason(system: httpx.Client, lab: dict, sshd: Any) -> None:
    dev = device(lab, "cisco_ios")
    ok = system.post(
        "/device/test", json={"driver": "netmiko", "connection_args": dev.connection_args()}
    )
    assert ok.status_code == 200
    data = ok.json()
    assert data["success"] is True and data["latency"] > 0
    assert data["result"]["prompt"].endswith((">", "#"))
    ssh = system.post(
        "/device/test",
        json={
            "driver": "paramiko",
            "connection_args": ssh_args(sshd),
        },
    ).json()
    assert ssh["success"] is True and ssh["result"]["remote_version"].startswith("SSH-2.0-OpenSSH")
    args = {**dev.connection_args(), "password": "wrong"}
    bad = system.post("/device/test", json={"driver": "netmiko", "connection_args": args}).json()
    assert bad["success"] is False and bad["error_type"] == "authentication"
    assert isinstance(bad["error"], str) and "wrong" not in bad["error"]


def test_junos_config_is_committed(system: httpx.Client, lab: dict) -> None:
    dev = device(lab, "juniper_junos")
    body = {
        "driver": "netmiko",
        "connection_args": dev.connection_args(),
        "config": ["set system host-name lab-junos"],
    }
    job = run(system, body)
    assert job["status"] == "finished", job
    line, commit = job["result"]["retval"]
    assert line["exit_status"] == 0
    assert commit["command"] == "commit" and commit["exit_status"] == 0
