"""No secret of a job or its webhook is stored readable: after real jobs and deliveries,
every key of Redis (each type read whole; RQ's compressed pickles opened) and the AOF
files hold none of the test's secret values, nor do the processes' logs. The deliveries
still carry them to the receiver: sealing is undone where they are used."""

from __future__ import annotations

import base64
import secrets
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from redis import Redis
from standardwebhooks.webhooks import Webhook

from netpulse.webhooks.signing import generate_secret
from tests.integration.helpers import run, ssh_args
from tests.support import processes
from tests.support.receiver import Receiver


def values_of(redis: Redis, key: bytes) -> Iterator[bytes]:
    """Every stored byte string under ``key``, whatever its type."""
    kind = redis.type(key)
    if kind == b"string":
        value = redis.get(key)
        yield value or b""
    elif kind == b"hash":
        for field, value in redis.hgetall(key).items():
            yield field
            yield value
    elif kind == b"list":
        yield from redis.lrange(key, 0, -1)
    elif kind == b"set":
        yield from redis.smembers(key)
    elif kind == b"zset":
        yield from redis.zrange(key, 0, -1)
    elif kind == b"stream":
        for _, fields in redis.xrange(key):
            for field, value in fields.items():
                yield field
                yield value


def readable_forms(raw: bytes) -> Iterator[bytes]:
    """The bytes as stored, and opened when they are zlib data (RQ's job ``data``)."""
    yield raw
    try:
        opened = zlib.decompress(raw)
    except zlib.error:
        return
    yield opened


def test_no_secret_of_a_job_or_its_webhook_is_stored_readable(
    system: httpx.Client,
    sshd: Any,
    redis: Redis,
    tmp_session: Path,
    receiver: Receiver,
) -> None:
    token = secrets.token_hex(6)
    device_password = f"devpw-{token}"
    passphrase = f"phrase-{token}"
    sudo_password = f"sudopw-{token}"
    header_value = f"Bearer hdr-{token}"
    cookie_value = f"ck-{token}"
    basic_password = f"basic-{token}"
    signing_secret = generate_secret()
    body = {
        "driver": "paramiko",
        "connection_args": {
            **ssh_args(sshd),
            "password": device_password,
            "passphrase": passphrase,
        },
        "command": "echo sealed",
        "driver_args": {"sudo": True, "sudo_password": sudo_password},
        "webhook": {
            "url": receiver.url(),
            "headers": {"X-Api-Token": header_value},
            "cookies": {"session": cookie_value},
            "auth": ["hook-user", basic_password],
            "secret": signing_secret,
        },
    }
    job = run(system, body)
    assert job["status"] == "finished", job
    [got] = receiver.wait_for("/hook")
    # Opened where they are used: the receiver gets every one of them.
    assert got.headers["x-api-token"] == header_value
    assert f"session={cookie_value}" in got.headers["cookie"]
    credentials = base64.b64encode(f"hook-user:{basic_password}".encode()).decode()
    assert got.headers["authorization"] == f"Basic {credentials}"
    Webhook(signing_secret).verify(got.body, dict(got.headers))

    secret_key_part = signing_secret.removeprefix("whsec_")
    wanted = [
        device_password,
        passphrase,
        sudo_password,
        header_value,
        cookie_value,
        basic_password,
        secret_key_part,
    ]
    stored: list[bytes] = []
    for key in redis.scan_iter(count=1000):
        for raw in values_of(redis, key):
            stored.extend(readable_forms(raw))
    assert stored, "the scan read nothing"
    for value in wanted:
        needle = value.encode()
        assert not any(needle in blob for blob in stored), f"{value!r} is readable in Redis"

    aof_files = [p for p in (tmp_session / "redis").rglob("*") if p.is_file() and "aof" in p.name]
    assert aof_files, "the session Redis writes no AOF"
    logs = list(tmp_session.glob("*.log"))
    # The audit store too, once the job's end is in it.
    processes.wait_until(
        lambda: system.get(f"/audit/{job['id']}").json().get("status") == "finished",
        30,
        "the job's audit entry",
        interval=0.1,
    )
    audit_files = list(tmp_session.glob("audit.db*"))
    assert audit_files, "no audit store in the data directory"
    for path in [*aof_files, *logs, *audit_files]:
        text = path.read_bytes()
        for value in wanted:
            assert value.encode() not in text, f"{value!r} is readable in {path.name}"
