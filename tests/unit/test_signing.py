"""Signing must interoperate with the reference Standard Webhooks verifier."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from netpulse.webhooks.signing import build_headers, generate_secret, sign, validate_secret

BODY = b'{"id":"job-1","event_type":"job.completed","result":"ok \xc3\xa9"}'


def _secret(n_bytes: int, fill: int = 7) -> str:
    return "whsec_" + base64.b64encode(bytes([fill]) * n_bytes).decode()


def test_generated_secret_is_valid_and_random() -> None:
    first, second = generate_secret(), generate_secret()
    assert first != second
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert validate_secret(first) == first


def test_signature_verifies_with_reference_library() -> None:
    secret = generate_secret()
    headers = build_headers("msg_1", BODY, [secret])
    assert Webhook(secret).verify(BODY, headers) == {
        "id": "job-1",
        "event_type": "job.completed",
        "result": "ok é",
    }


def test_signature_matches_reference_sign_byte_for_byte() -> None:
    secret = generate_secret()
    ts = 1_700_000_000
    expected = Webhook(secret).sign("msg_1", datetime.fromtimestamp(ts, UTC), BODY.decode())
    assert sign([secret], "msg_1", ts, BODY) == expected


def test_tampered_body_fails_verification() -> None:
    secret = generate_secret()
    headers = build_headers("msg_1", BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"ok", b"KO"), headers)


def test_other_id_or_wrong_secret_fails_verification() -> None:
    secret = generate_secret()
    headers = build_headers("msg_1", BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_2"})
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)


def test_two_secrets_give_two_entries_each_verifiable() -> None:
    old, new = generate_secret(), generate_secret()
    headers = build_headers("msg_1", BODY, [old, new])
    entries = headers["webhook-signature"].split(" ")
    assert len(entries) == 2
    assert all(e.startswith("v1,") for e in entries)
    for secret in (old, new):
        Webhook(secret).verify(BODY, headers)


def test_duplicate_secret_is_signed_once() -> None:
    secret = generate_secret()
    assert len(sign([secret, secret], "msg_1", 1, BODY).split(" ")) == 1


def test_body_that_is_not_utf8_can_be_signed() -> None:
    signature = sign([generate_secret()], "msg_1", 1, b"\xff\xfe\x00")
    assert signature.startswith("v1,")


def test_headers_without_secrets_carry_id_and_timestamp_only() -> None:
    headers = build_headers("msg_1", BODY, [], now=1_700_000_000.9)
    assert headers == {"webhook-id": "msg_1", "webhook-timestamp": "1700000000"}


def test_timestamp_defaults_to_now() -> None:
    before = int(time.time())
    stamp = int(build_headers("msg_1", BODY, [])["webhook-timestamp"])
    assert before <= stamp <= int(time.time())


def test_stale_timestamp_is_rejected_by_receivers() -> None:
    secret = generate_secret()
    headers = build_headers("msg_1", BODY, [secret], now=time.time() - 3600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)


@pytest.mark.parametrize("n_bytes", [24, 32, 64])
def test_secret_sizes_accepted(n_bytes: int) -> None:
    assert validate_secret(_secret(n_bytes)) == _secret(n_bytes)


def test_unpadded_secret_and_whitespace_tolerated() -> None:
    padded = _secret(25)  # 25 bytes -> base64 ends in "=="
    assert padded.endswith("==")
    assert validate_secret(padded.rstrip("=")) == padded.rstrip("=")
    assert validate_secret(f"  {padded}\n") == padded


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (base64.b64encode(b"x" * 32).decode(), "must start with 'whsec_'"),
        ("whsec_not*base64!", "not valid base64"),
        (_secret(16), "24 to 64 random bytes; this one holds 16"),
        (_secret(65), "this one holds 65"),
        ("whsec_", "this one holds 0"),
        ("", "must start with 'whsec_'"),
    ],
)
def test_invalid_secrets_are_explained(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_secret(secret)


def test_sign_refuses_no_secret_and_bad_secret() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        sign([], "msg_1", 1, BODY)
    with pytest.raises(ValueError, match="whsec_"):
        build_headers("msg_1", BODY, ["plain-password"])
