"""Stop means stop: DELETE of a running pinned job ends it long before its read would time out.

The command sleeps far longer than any wait here and the read timeout is longer still, so a job
that ends ``stopped`` within the wait can only have been ended by the stop itself (before the
fix, the node noticed the closed session only when netmiko's read timed out).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.helpers import device, run, ssh_args_for, submit, wait_job, wait_started

#: Far beyond every wait below: the command never ends by itself during the test.
SLEEP = 300
READ_TIMEOUT = 600
#: How long the stopped job may take to be final (generous for a loaded CI machine; the
#: benchmark bench/faults.py measures the real figure).
STOP_WAIT = 20


def pinned(sshd: Any, driver: str, command: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "driver": driver,
        "queue_strategy": "pinned",
        "connection_args": ssh_args_for(sshd, driver),
        "command": command,
    }
    if driver == "netmiko":
        body["driver_args"] = {"read_timeout": READ_TIMEOUT}
    else:
        body["driver_args"] = {"timeout": READ_TIMEOUT}
    return body


@pytest.mark.parametrize("driver", ["netmiko", "paramiko"])
def test_delete_stops_a_blocked_read_at_once(
    system: httpx.Client, sshd: Any, receiver: Any, driver: str
) -> None:
    warm = run(system, pinned(sshd, driver, "true"))
    assert warm["status"] == "finished", warm
    body = pinned(sshd, driver, f"sleep {SLEEP}")
    body["webhook"] = {"url": receiver.url()}
    job_id = submit(system, body)["id"]
    wait_started(system, job_id)
    assert system.delete(f"/jobs/{job_id}").status_code == 200

    job = wait_job(system, job_id, timeout=STOP_WAIT)
    assert job["status"] == "stopped", job
    [event] = receiver.wait_for("/hook", 1, timeout=30)
    assert event.json()["event_type"] == "job.stopped", event.json()
    assert event.json()["id"] == job_id

    after = run(system, pinned(sshd, driver, "echo after"))
    assert after["status"] == "finished", after
    assert after["result"]["retval"][0]["metadata"]["session_reused"] is False
    assert len(receiver.on("/hook")) == 1, "one final event per job"


def test_delete_stops_netmiko_waiting_for_a_prompt_that_never_comes(
    system: httpx.Client, lab: dict[str, Any]
) -> None:
    """FakeNOS answers at once, but netmiko waits for ``expect_string``, which never shows:
    the read loop polls a channel that has nothing to read until ``read_timeout``."""
    dev = device(lab, "arista_eos")
    body: dict[str, Any] = {
        "driver": "netmiko",
        "queue_strategy": "pinned",
        "connection_args": dev.connection_args(),
        "command": "show clock",
    }
    assert run(system, body)["status"] == "finished"
    stuck = {
        **body,
        "driver_args": {
            "read_timeout": READ_TIMEOUT,
            "expect_string": "NEVER-SEEN",
            "cmd_verify": False,
        },
    }
    job_id = submit(system, stuck)["id"]
    wait_started(system, job_id)
    assert system.delete(f"/jobs/{job_id}").status_code == 200
    job = wait_job(system, job_id, timeout=STOP_WAIT)
    assert job["status"] == "stopped", job
    after = run(system, body)
    assert after["status"] == "finished", after
    assert after["result"]["retval"][0]["metadata"]["session_reused"] is False
