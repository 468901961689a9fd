"""Asymmetric signatures (Standard Webhooks `v1a`, Ed25519): every event is also signed with
the server's signing key; a receiver verifies with the public key from
`GET /webhooks/signing-keys` and holds no secret. Verified here with `cryptography` directly
(an implementation independent of NetPulse's), and by `netpulse webhook listen --public-key`."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from netpulse.cli.listener import create_listener_app
from netpulse.webhooks.signing import generate_signing_key, public_key_of
from tests.integration.helpers import run, ssh_args
from tests.support.receiver import Receiver
from tests.support.stack import Stack

KEYS = [generate_signing_key(), generate_signing_key()]  # the second as a rotation


@pytest.fixture
def stack(netpulse_env: dict[str, str], tmp_path: Path) -> Iterator[Stack]:
    keys = "[" + ",".join(f'"{k}"' for k in KEYS) + "]"
    env = {**netpulse_env, "NETPULSE_WEBHOOKS__ASYMMETRIC_SIGNING_KEYS": keys}
    with Stack(env, tmp_path / "stack") as system:
        yield system


def _independent_verify(
    public_key: str, msg_id: str, timestamp: str, body: bytes, sig: str
) -> bool:
    raw = base64.b64decode(public_key.removeprefix("whpk_"))
    key = Ed25519PublicKey.from_public_bytes(raw)
    content = f"{msg_id}.{timestamp}.".encode() + body
    for entry in sig.split():
        version, _, value = entry.partition(",")
        if version == "v1a":
            try:
                key.verify(base64.b64decode(value), content)
                return True
            except InvalidSignature:
                continue
    return False


def test_events_carry_v1a_signatures_that_the_public_keys_verify(
    stack: Stack, sshd: Any, receiver: Receiver
) -> None:
    api = stack.client()
    published = api.get("/webhooks/signing-keys").json()["keys"]
    assert [k["public_key"] for k in published] == [public_key_of(k) for k in KEYS]
    assert all(k["algorithm"] == "ed25519" and k["signature_version"] == "v1a" for k in published)
    assert not any(k.removeprefix("whsk_") in str(published) for k in KEYS)

    body = {
        "driver": "paramiko",
        "connection_args": ssh_args(sshd),
        "command": "echo signed",
        "webhook": {"url": receiver.url("/v1a")},
    }
    job = run(api, body)
    assert job["status"] == "finished", job
    [got] = receiver.wait_for("/v1a", timeout=30)
    headers = {k.lower(): v for k, v in got.headers.items()}
    signature = headers["webhook-signature"]
    assert signature.count("v1a,") == 2 and "v1," in signature  # the HMAC one stays
    for key in published:
        assert _independent_verify(
            key["public_key"],
            headers["webhook-id"],
            headers["webhook-timestamp"],
            got.body,
            signature,
        )
    tampered = got.body.replace(b"signed", b"forged")
    assert not _independent_verify(
        published[0]["public_key"],
        headers["webhook-id"],
        headers["webhook-timestamp"],
        tampered,
        signature,
    )

    # The listener verifies with the public key only: 200 for the real event, 401 tampered.
    app = create_listener_app(None, public_key=published[0]["public_key"])
    transport = httpx.ASGITransport(app=app)

    async def post(content: bytes) -> int:
        async with httpx.AsyncClient(transport=transport, base_url="http://listener") as c:
            return (await c.post("/v1a", content=content, headers=headers)).status_code

    assert asyncio.run(post(got.body)) == 200
    assert asyncio.run(post(tampered)) == 401


def test_a_malformed_signing_key_stops_start_up_with_the_setting_named() -> None:
    from netpulse.config import Settings

    with pytest.raises(ValueError, match=r"webhooks\.asymmetric_signing_keys") as refused:
        Settings(webhooks={"asymmetric_signing_keys": ["whsk_not-a-key"]})
    assert "not-a-key" not in str(refused.value)
