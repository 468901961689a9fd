"""A job past its ``execution_timeout`` ends failed with one ``job.failed`` event, its session
closed at once (never a polite logout that waits for a device still answering), and the
device takes the next job. How soon it ends is measured by bench/timeouts.py, not here."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.helpers import device, run
from tests.support.receiver import Receiver

#: FakeNOS echoes input one byte per 10 ms: this command takes about 3 s to send.
SLOW_COMMAND = "show version " + "x" * 300


@pytest.mark.parametrize("strategy", ["pinned", "fifo"])
def test_a_job_past_its_timeout_fails_once_and_the_device_takes_the_next(
    system: httpx.Client, lab: dict[str, Any], receiver: Receiver, strategy: str
) -> None:
    dev = device(lab, "cisco_ios")
    args = {
        "host": dev.host,
        "port": dev.port,
        "username": dev.username,
        "password": dev.password,
        "device_type": "cisco_ios",
    }
    hook = f"/timeout-{strategy}"
    job = run(
        system,
        {
            "driver": "netmiko",
            "connection_args": args,
            "command": SLOW_COMMAND,
            "execution_timeout": 1,
            "queue_strategy": strategy,
            "webhook": {"url": receiver.url(hook)},
        },
    )
    assert job["status"] == "failed", job
    assert job["result"]["error"]["type"] == "timeout"
    [event] = receiver.wait_for(hook, timeout=30)
    assert event.json()["event_type"] == "job.failed" and event.json()["id"] == job["id"]
    after = run(
        system,
        {
            "driver": "netmiko",
            "connection_args": args,
            "command": "show clock",
            "queue_strategy": strategy,
        },
    )
    assert after["status"] == "finished", after
    assert len(receiver.on(hook)) == 1  # one event, whatever else happened
