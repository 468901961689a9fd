"""Every field of ``file_transfer`` against a real OpenSSH server, over SFTP (paramiko) and
SCP (netmiko, device_type linux): resume, sync_mode, hash_algorithm, overwrite, chmod,
execute_after_upload with clean-up, recursive directories, local_path, rendering."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DEVICE_FILES_DIR
from tests.integration.helpers import run, ssh_args_for, wait_job

DRIVERS = ["paramiko", "netmiko"]


@pytest.fixture
def remote() -> Iterator[str]:
    """A path on the SSH server (this machine) that the test removes afterwards."""
    path = f"/tmp/netpulse-ft-{uuid.uuid4().hex}"
    yield path
    target = Path(path)
    if target.is_dir():
        shutil.rmtree(target)
    target.unlink(missing_ok=True)


@pytest.fixture
def local_dir() -> Iterator[Path]:
    """A directory inside the device files directory (where local_path may point)."""
    path = Path(tempfile.mkdtemp(prefix="netpulse-ft-local-", dir=DEVICE_FILES_DIR))
    yield path
    shutil.rmtree(path)


def body(sshd: Any, driver: str, **spec: Any) -> dict[str, Any]:
    return {
        "driver": driver,
        "connection_args": ssh_args_for(sshd, driver),
        "file_transfer": spec,
    }


def upload(api: httpx.Client, request: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    reply = api.post(
        "/device/exec",
        data={"request": json.dumps(request)},
        files={"file": ("payload.bin", data, "application/octet-stream")},
    )
    assert reply.status_code == 201, reply.text
    job = wait_job(api, reply.json()["id"])
    assert job["status"] == "finished", job
    return list(job["result"]["retval"])


def spec_up(remote: str, **more: Any) -> dict[str, Any]:
    return {"operation": "upload", "remote_path": remote, **more}


@pytest.mark.parametrize("driver", DRIVERS)
def test_resume_continues_a_partial_upload_after_checking_its_start(
    system: httpx.Client, sshd: Any, driver: str, remote: str
) -> None:
    data = os.urandom(300_000)
    [first] = upload(system, body(sshd, driver, **spec_up(remote)), data[:120_000])
    assert first["exit_status"] == 0
    [row] = upload(
        system, body(sshd, driver, **spec_up(remote, resume=True, chunk_size=4096)), data
    )
    assert row["exit_status"] == 0, row
    assert row["metadata"]["resumed_from"] == 120_000 and row["metadata"]["verified"] is True
    assert "180000 bytes sent" in row["stdout"]
    assert Path(remote).read_bytes() == data

    # A partial file that is not the start of this one is replaced, never continued.
    other = os.urandom(300_000)
    [row] = upload(system, body(sshd, driver, **spec_up(remote, resume=True)), other)
    assert row["metadata"]["resumed_from"] == 0 and Path(remote).read_bytes() == other


@pytest.mark.parametrize("driver", DRIVERS)
def test_sync_mode_hash_skips_a_file_the_device_has(
    system: httpx.Client, sshd: Any, driver: str, remote: str
) -> None:
    data = b"interface eth0\n" * 1000
    spec = spec_up(remote, sync_mode="hash", hash_algorithm="md5")
    [sent] = upload(system, body(sshd, driver, **spec), data)
    assert sent["metadata"].get("skipped") is None
    assert sent["metadata"]["hash"] == hashlib.md5(data).hexdigest()
    [again] = upload(system, body(sshd, driver, **spec), data)
    assert again["metadata"]["skipped"] is True and "unchanged" in again["stdout"]
    [changed] = upload(system, body(sshd, driver, **spec), data + b"!")
    assert changed["metadata"].get("skipped") is None
    assert Path(remote).read_bytes() == data + b"!"


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256"])
def test_hash_algorithm_is_used_on_both_ends(
    system: httpx.Client, sshd: Any, remote: str, algorithm: str
) -> None:
    data = os.urandom(5000)
    [row] = upload(
        system, body(sshd, "paramiko", **spec_up(remote, hash_algorithm=algorithm)), data
    )
    assert row["metadata"]["hash_algorithm"] == algorithm
    assert row["metadata"]["hash"] == hashlib.new(algorithm, data).hexdigest()
    assert row["metadata"]["verified"] is True
    [unverified] = upload(
        system, body(sshd, "paramiko", **spec_up(remote, verify_file=False)), data
    )
    assert unverified["metadata"]["verified"] is False  # verify_file: the original's name


@pytest.mark.parametrize("driver", DRIVERS)
def test_overwrite_false_refuses_an_existing_file_and_keeps_it(
    system: httpx.Client, sshd: Any, driver: str, remote: str
) -> None:
    upload(system, body(sshd, driver, **spec_up(remote)), b"first")
    [row] = upload(system, body(sshd, driver, **spec_up(remote, overwrite=False)), b"second")
    assert row["exit_status"] == 1 and "overwrite is false" in row["stderr"]
    assert Path(remote).read_bytes() == b"first"


@pytest.mark.parametrize("driver", DRIVERS)
def test_upload_a_script_chmod_run_it_and_clean_up(
    system: httpx.Client, sshd: Any, driver: str, remote: str
) -> None:
    script = b'#!/bin/sh\necho "ran with $1 as $(id -un)"\n'
    spec = spec_up(remote, chmod="0755", execute_after_upload=True, execute_command=f"{remote} lab")
    rows = upload(system, body(sshd, driver, **spec), script)
    assert [r["exit_status"] for r in rows] == [0, 0, 0], rows
    assert rows[1]["command"] == f"{remote} lab"
    assert rows[1]["stdout"].strip() == f"ran with lab as {sshd.username}"
    assert rows[2]["command"].startswith("rm -f")
    assert not Path(remote).exists()  # cleanup_after_exec defaults to true

    kept = upload(
        system,
        body(
            sshd,
            driver,
            **spec_up(remote, chmod="750", execute_after_upload=True, cleanup_after_exec=False),
        ),
        script,
    )
    assert len(kept) == 2 and kept[1]["stdout"].startswith("ran with  as")  # ran as the path
    assert stat.S_IMODE(Path(remote).stat().st_mode) == 0o750


@pytest.mark.parametrize("driver", DRIVERS)
def test_recursive_upload_and_download_of_a_directory(
    system: httpx.Client, sshd: Any, driver: str, remote: str, local_dir: Path
) -> None:
    source = local_dir / "tree"
    files = {"a.txt": b"alpha", "sub/b.bin": os.urandom(2000), "sub/deeper/c.cfg": b"c"}
    for name, data in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    spec = {
        "operation": "upload",
        "remote_path": remote,
        "local_path": str(source),
        "recursive": True,
    }
    [row] = run(system, body(sshd, driver, **spec))["result"]["retval"]
    assert row["exit_status"] == 0, row
    assert row["metadata"]["files"] == 3
    for name, data in files.items():
        assert Path(remote, name).read_bytes() == data

    back = local_dir / "back"
    spec = {
        "operation": "download",
        "remote_path": remote,
        "local_path": str(back),
        "recursive": True,
    }
    [row] = run(system, body(sshd, driver, **spec))["result"]["retval"]
    assert row["exit_status"] == 0 and row["metadata"]["files"] == 3, row
    for name, data in files.items():
        assert (back / name).read_bytes() == data


def test_local_path_uploads_a_worker_file_and_keeps_a_download(
    system: httpx.Client, sshd: Any, remote: str, local_dir: Path
) -> None:
    source = local_dir / "image.bin"
    source.write_bytes(os.urandom(10_000))
    up = {"operation": "upload", "remote_path": remote, "local_path": str(source)}
    [row] = run(system, body(sshd, "paramiko", **up))["result"]["retval"]
    assert row["exit_status"] == 0 and Path(remote).read_bytes() == source.read_bytes()

    copy = local_dir / "copy.bin"
    down = {"operation": "download", "remote_path": remote, "local_path": str(copy)}
    [row] = run(system, body(sshd, "paramiko", **down))["result"]["retval"]
    assert row["exit_status"] == 0 and copy.read_bytes() == source.read_bytes()
    assert row["download_url"]  # and the client can still fetch it
    again = run(system, body(sshd, "paramiko", **down, overwrite=False))["result"]["retval"]
    assert again[0]["exit_status"] == 1 and "overwrite is false" in again[0]["stderr"]


def test_a_local_path_outside_the_files_directory_is_refused(api: httpx.Client, sshd: Any) -> None:
    up = {"operation": "upload", "remote_path": "/tmp/x", "local_path": "/etc/shadow"}
    reply = api.post("/device/exec", json=body(sshd, "paramiko", **up))
    assert reply.status_code == 422 and "local_path" in reply.text


def test_transfer_paths_are_rendered_with_the_request_context(
    system: httpx.Client, sshd: Any, remote: str
) -> None:
    request = body(sshd, "paramiko", operation="upload", remote_path=remote + "-{{ site }}")
    request["rendering"] = {"context": {"site": "ams1"}}
    [row] = upload(system, request, b"rendered")
    try:
        assert row["command"] == f"upload {remote}-ams1"
        assert Path(f"{remote}-ams1").read_bytes() == b"rendered"
    finally:
        Path(f"{remote}-ams1").unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"operation": "download", "chmod": "0755"}, "apply to an upload only"),
        ({"operation": "upload", "execute_command": "ls"}, "without execute_after_upload"),
        ({"operation": "download", "recursive": True}, "needs local_path"),
        ({"operation": "upload", "chmod": "999"}, "chmod"),
        ({"operation": "upload", "hash_algorithm": "crc32"}, "hash_algorithm"),
    ],
)
def test_inconsistent_transfer_options_are_refused(
    api: httpx.Client, sshd: Any, spec: dict[str, Any], words: str
) -> None:
    request = body(sshd, "paramiko", remote_path="/tmp/x", **spec)
    reply = api.post("/device/exec", json=request)
    assert reply.status_code == 422 and words in reply.text, reply.text


def test_options_needing_a_shell_are_refused_for_a_network_os(api: httpx.Client) -> None:
    request = {
        "driver": "netmiko",
        "connection_args": {"device_type": "cisco_ios", "host": "127.0.0.1", "username": "u"},
        "file_transfer": {"operation": "download", "remote_path": "flash:x", "resume": True},
    }
    reply = api.post("/device/exec", json=request)
    assert reply.status_code == 422
    assert "resume" in reply.text and "cisco_ios" in reply.text
