"""A detached task outlives `netpulse up` itself: SIGKILL of the supervisor (every child and
the private Redis die with it) while the task runs on its host, then `netpulse up` again on
the same data directory: the follower takes the task up where the log was read, and every
byte arrives once and in order, with one final event."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from netpulse.runtime.ports import free_port
from tests.conftest import DEVICE_FILES_DIR
from tests.integration.helpers import ssh_args
from tests.integration.test_cli import clean_env, port_open
from tests.integration.test_detached import assert_contiguous, pushes_and_final
from tests.support import processes
from tests.support.receiver import Receiver


def start_up(port: int, data_dir: Path) -> subprocess.Popen[str]:
    up = subprocess.Popen(
        [sys.executable, "-m", "netpulse", "up", "--port", str(port), "--data-dir", str(data_dir)],
        env=clean_env(
            COLUMNS="200",
            NETPULSE_WEBHOOKS__ALLOW_CIDRS='["127.0.0.0/8"]',
            NETPULSE_DRIVERS__FILES_DIR=DEVICE_FILES_DIR,
            NETPULSE_DETACHED__LEASE_SECONDS="5",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = up.stdout.readline() if up.stdout else ""
        if not line:
            break
        seen.append(line)
        if line.strip() == "[ready]":
            return up
    up.kill()
    raise AssertionError("netpulse up did not get ready:\n" + "".join(seen))


def test_a_task_survives_a_killed_netpulse_up_and_loses_no_byte(
    tmp_path: Path, sshd: Any, receiver: Receiver
) -> None:
    port, data_dir = free_port(), tmp_path / "data"
    up = start_up(port, data_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        key = (data_dir / "api_key").read_text().strip()
        api = httpx.Client(base_url=url, headers={"X-API-KEY": key}, timeout=70)
        command = "i=0; while [ $i -lt 40 ]; do echo tick $i; i=$((i+1)); sleep 0.5; done"
        body = {
            "driver": "paramiko",
            "connection_args": ssh_args(sshd),
            "command": command,
            "detach": True,
            "push_interval": 5,
            "webhook": {"url": receiver.url("/dt-up")},
        }
        job = api.get(f"/jobs/{api.post('/device/exec', json=body).json()['id']}?wait=60").json()
        assert job["status"] == "finished", job
        processes.wait_until(lambda: pushes_and_final(receiver, "/dt-up")[0], 30, "the first push")

        up.send_signal(signal.SIGKILL)  # the supervisor alone; its children die with it
        up.wait()
        processes.wait_until(lambda: not port_open(port), 30, "the old controller to go")
        up = start_up(port, data_dir)

        def ended() -> dict | None:
            reply = api.get(f"/detached-tasks/{job['task_id']}").json()
            return reply if reply["completed"] else None

        end = processes.wait_until(ended, 90, "the task to end")
        assert end["status"] == "completed" and end["exit_code"] == 0
        processes.wait_until(lambda: pushes_and_final(receiver, "/dt-up")[1], 30, "the final event")
        pushes, finals = pushes_and_final(receiver, "/dt-up")
        assert len(finals) == 1
        assert assert_contiguous(pushes) == "".join(f"tick {i}\n" for i in range(40))
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
