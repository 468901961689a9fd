"""Standard Webhooks signing: secrets, the ``webhook-signature`` value and the three headers.

The receiver's side of the contract (https://www.standardwebhooks.com):

- ``webhook-id``: the event id, identical on every attempt, so receivers can deduplicate;
- ``webhook-timestamp``: Unix seconds of *this* attempt, so receivers can reject replays
  (the reference verifier allows 5 minutes of drift);
- ``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``,
  one entry per active secret, so a receiver keeps verifying while a key is being rotated.

We compute the HMAC with :mod:`hmac` instead of ``standardwebhooks.Webhook.sign`` because that
method takes the payload as ``str``: it would force us to decode the body and could not sign a
body that is not UTF-8. The tests check byte-for-byte agreement with the reference library
and verify every signature with ``standardwebhooks.Webhook.verify``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets
import time

from netpulse.models.signing_secret import (
    SECRET_MAX_BYTES,
    SECRET_MIN_BYTES,
    SECRET_PREFIX,
    decode_secret,
    validate_secret,
)

__all__ = [
    "SECRET_MAX_BYTES",
    "SECRET_MIN_BYTES",
    "SECRET_PREFIX",
    "build_headers",
    "generate_secret",
    "sign",
    "validate_secret",
]

GENERATED_SECRET_BYTES = 32

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


def generate_secret() -> str:
    """Return a new secret: ``whsec_`` + base64 of 32 bytes from the OS CSPRNG."""
    raw = _secrets.token_bytes(GENERATED_SECRET_BYTES)
    return SECRET_PREFIX + base64.b64encode(raw).decode("ascii")


def sign(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the ``webhook-signature`` value: one ``v1,<sig>`` entry per distinct secret.

    Several secrets are signed with during key rotation, so receivers holding either the
    old or the new key keep verifying. Raises ValueError on an invalid secret or none at all.
    """
    if not secrets:
        raise ValueError("Signing needs at least one secret.")
    if not msg_id:
        raise ValueError("Signing needs a non-empty message id.")
    signed_content = f"{msg_id}.{int(timestamp)}.".encode() + bytes(body)
    entries: list[str] = []
    for secret in secrets:
        digest = hmac.new(decode_secret(secret), signed_content, hashlib.sha256).digest()
        entry = "v1," + base64.b64encode(digest).decode("ascii")
        if entry not in entries:
            entries.append(entry)
    return " ".join(entries)


def build_headers(
    msg_id: str, body: bytes, secrets: list[str], now: float | None = None
) -> dict[str, str]:
    """Return the Standard Webhooks headers for one attempt.

    ``webhook-id`` and ``webhook-timestamp`` are always present (the id is the receiver's
    idempotency key even for unsigned endpoints); ``webhook-signature`` only when at least
    one secret is configured. Call this again for every attempt: the timestamp must be fresh.
    """
    timestamp = int(time.time() if now is None else now)
    headers = {HEADER_ID: msg_id, HEADER_TIMESTAMP: str(timestamp)}
    if secrets:
        headers[HEADER_SIGNATURE] = sign(secrets, msg_id, timestamp, body)
    return headers
