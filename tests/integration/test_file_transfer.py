"""File transfer: SFTP (paramiko) and SCP (netmiko) against OpenSSH, staged in Redis."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY
from tests.integration.helpers import run, ssh_args_for, wait_job


def upload(api: httpx.Client, sshd: Any, driver: str, data: bytes, remote: str) -> dict:
    body = {
        "driver": driver,
        "connection_args": ssh_args_for(sshd, driver),
        "file_transfer": {"operation": "upload", "remote_path": remote},
    }
    reply = api.post(
        "/device/exec",
        data={"request": json.dumps(body)},
        files={"file": ("payload.bin", data, "application/octet-stream")},
    )
    assert reply.status_code == 201, reply.text
    return wait_job(api, reply.json()["id"])


def download(api: httpx.Client, sshd: Any, driver: str, remote: str) -> dict:
    body = {
        "driver": driver,
        "connection_args": ssh_args_for(sshd, driver),
        "file_transfer": {"operation": "download", "remote_path": remote},
    }
    return run(api, body)


@pytest.mark.parametrize("driver", ["paramiko", "netmiko"])
def test_upload_then_download_with_checksums(system: httpx.Client, sshd: Any, driver: str):
    data = os.urandom(200_000)
    digest = hashlib.sha256(data).hexdigest()
    remote = f"/tmp/netpulse-{uuid.uuid4().hex}.bin"
    try:
        job = upload(system, sshd, driver, data, remote)
        assert job["status"] == "finished", job
        [item] = job["result"]["retval"]
        assert item["exit_status"] == 0, item
        assert item["metadata"]["sha256"] == digest and item["metadata"]["verified"] is True
        assert hashlib.sha256(Path(remote).read_bytes()).hexdigest() == digest

        job = download(system, sshd, driver, remote)
        [item] = job["result"]["retval"]
        assert item["exit_status"] == 0 and item["metadata"]["verified"] is True
        assert item["download_url"].startswith(str(system.base_url).rstrip("/") + "/storage/fetch/")
        fetched = system.get(item["download_url"])
        assert fetched.status_code == 200
        assert fetched.content == data
        assert fetched.headers["X-Checksum-SHA256"] == digest
    finally:
        Path(remote).unlink(missing_ok=True)


def test_missing_remote_file_is_a_failed_result_not_a_crash(system: httpx.Client, sshd: Any):
    job = download(system, sshd, "paramiko", "/tmp/netpulse-does-not-exist")
    assert job["status"] == "finished"
    [item] = job["result"]["retval"]
    assert item["exit_status"] == 1 and "/tmp/netpulse-does-not-exist" in item["stderr"]
    assert item["download_url"] is None


def test_upload_without_a_file_is_refused(api: httpx.Client, sshd: Any) -> None:
    body = {
        "driver": "paramiko",
        "connection_args": ssh_args_for(sshd, "paramiko"),
        "file_transfer": {"operation": "upload", "remote_path": "/tmp/x"},
    }
    reply = api.post("/device/exec", json=body)
    assert reply.status_code == 422 and "multipart" in reply.text


@pytest.mark.parametrize(
    "file_id", ["0" * 32, "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "not-hex"]
)
def test_storage_fetch_unknown_or_escaping_ids_are_404(api: httpx.Client, file_id: str):
    assert api.get(f"/storage/fetch/{file_id}").status_code == 404


def test_storage_fetch_needs_the_api_key(controller_url: str) -> None:
    assert httpx.get(f"{controller_url}/storage/fetch/{'0' * 32}").status_code == 403


def test_public_client_upload_and_download(
    controller_url: str, system: httpx.Client, sshd: Any, tmp_path: Path
) -> None:
    from netpulse_sdk import NetPulseClient

    local = tmp_path / "config.txt"
    local.write_bytes(b"hostname lab\n" * 100)
    remote = f"/tmp/netpulse-sdk-{uuid.uuid4().hex}.txt"
    args = {k: v for k, v in ssh_args_for(sshd, "paramiko").items() if k != "host"}
    try:
        with NetPulseClient(base_url=controller_url, api_key=API_KEY, driver="paramiko") as np:
            up = np.upload(sshd.host, str(local), remote, connection_args=args)
            assert up.ok, up
            back = tmp_path / "back.txt"
            down = np.download(sshd.host, remote, str(back), connection_args=args)
            assert down.ok
        assert back.read_bytes() == local.read_bytes()
    finally:
        Path(remote).unlink(missing_ok=True)
