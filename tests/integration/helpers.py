"""Small helpers shared by integration tests."""

from __future__ import annotations

from typing import Any

import httpx

FINAL = ("finished", "failed", "stopped", "canceled")


def device(lab: dict[str, Any], device_type: str) -> Any:
    for dev in lab.values():
        if dev.device_type == device_type:
            return dev
    raise LookupError(f"no {device_type} device in the lab")


def submit(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    reply = api.post("/device/exec", json=body)
    assert reply.status_code == 201, reply.text
    return reply.json()


def wait_job(api: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    """Wait for the job's end with the server-side wait (no client polling)."""
    reply = api.get(f"/jobs/{job_id}", params={"wait": min(timeout, 60)})
    assert reply.status_code == 200, reply.text
    job = reply.json()
    assert job["status"] in FINAL, f"job still {job['status']} after {timeout} s"
    return job


def run(api: httpx.Client, body: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    return wait_job(api, submit(api, body)["id"], timeout)


def ssh_args(server: Any) -> dict[str, Any]:
    """paramiko connection_args for a test OpenSSH server (key authentication)."""
    return {
        "host": server.host,
        "port": server.port,
        "username": server.username,
        "key_filename": str(server.key_filename),
    }


def ssh_args_for(server: Any, driver: str) -> dict[str, Any]:
    """connection_args for a test OpenSSH server: paramiko's, or netmiko's ``linux``."""
    if driver == "paramiko":
        return ssh_args(server)
    return {
        "device_type": "linux",
        "host": server.host,
        "port": server.port,
        "username": server.username,
        "use_keys": True,
        "key_file": str(server.key_filename),
    }


def wait_started(api: httpx.Client, job_id: str, timeout: float = 30) -> None:
    """Wait until a worker runs the job (polling: a running job publishes nothing)."""
    import time

    deadline = time.monotonic() + timeout
    while api.get(f"/jobs/{job_id}").json()["status"] != "started":
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not start within {timeout} s")
        time.sleep(0.05)


def unreachable_job(port: int, **extra: Any) -> dict[str, Any]:
    """A netmiko job for a loopback port nobody listens on: it fails fast, on a worker."""
    return {
        "driver": "netmiko",
        "connection_args": {
            "device_type": "cisco_ios",
            "host": "127.0.0.1",
            "port": port,
            "username": "u",
            "password": "p",
        },
        "command": "show version",
        **extra,
    }
