"""Standard Webhooks signing: secrets, the ``webhook-signature`` value and the three headers.

The receiver's side of the contract (https://www.standardwebhooks.com):

- ``webhook-id``: the event id, identical on every attempt, so receivers can deduplicate;
- ``webhook-timestamp``: Unix seconds of *this* attempt, so receivers can reject replays
  (the reference verifier allows 5 minutes of drift);
- ``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``,
  one entry per active secret, so a receiver keeps verifying while a key is being rotated;
  and, with ``webhooks.asymmetric_signing_keys``, ``v1a,<base64 Ed25519 signature of the same
  content>`` per key: a receiver verifies with the public key (``GET
  /webhooks/signing-keys``) and holds no secret that could forge an event.

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
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from netpulse.models.signing_secret import (
    PUBLIC_KEY_PREFIX,
    SECRET_MAX_BYTES,
    SECRET_MIN_BYTES,
    SECRET_PREFIX,
    SIGNING_KEY_PREFIX,
    b64_key,
    decode_secret,
    validate_secret,
    validate_signing_key,
)

__all__ = [
    "PUBLIC_KEY_PREFIX",
    "SECRET_MAX_BYTES",
    "SECRET_MIN_BYTES",
    "SECRET_PREFIX",
    "build_headers",
    "generate_secret",
    "generate_signing_key",
    "public_key_of",
    "sign",
    "validate_secret",
    "validate_signing_key",
    "verify_asymmetric",
]

GENERATED_SECRET_BYTES = 32

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


def generate_secret() -> str:
    """Return a new secret: ``whsec_`` + base64 of 32 bytes from the OS CSPRNG."""
    raw = _secrets.token_bytes(GENERATED_SECRET_BYTES)
    return SECRET_PREFIX + base64.b64encode(raw).decode("ascii")


def generate_signing_key() -> str:
    """A new Ed25519 signing key (``netpulse webhook signing-key`` prints one)."""
    return SIGNING_KEY_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode("ascii")


def _private(key: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        b64_key(key, SIGNING_KEY_PREFIX, "an asymmetric signing key")
    )


def public_key_of(key: str) -> str:
    """The ``whpk_`` public key receivers verify ``v1a`` signatures with."""
    raw = _private(key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def verify_asymmetric(
    public_key: str, msg_id: str, timestamp: int, body: bytes, signature_header: str
) -> bool:
    """Whether one ``v1a`` entry of ``signature_header`` is ``public_key``'s signature (what
    a receiver does; ``netpulse webhook listen --public-key`` uses it)."""
    key = Ed25519PublicKey.from_public_bytes(b64_key(public_key, PUBLIC_KEY_PREFIX, "a public key"))
    content = f"{msg_id}.{int(timestamp)}.".encode() + bytes(body)
    for entry in signature_header.split():
        version, _, value = entry.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(value), content)
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


def sign(
    secrets: list[str],
    msg_id: str,
    timestamp: int,
    body: bytes,
    signing_keys: Sequence[str] = (),
) -> str:
    """Return the ``webhook-signature`` value: one ``v1,<sig>`` entry per distinct secret,
    then one ``v1a,<sig>`` entry per Ed25519 signing key.

    Several secrets (and keys) are signed with during key rotation, so receivers holding
    either the old or the new key keep verifying. Raises ValueError on an invalid secret or
    key, or none at all.
    """
    if not secrets and not signing_keys:
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
    for key in signing_keys:
        entry = "v1a," + base64.b64encode(_private(key).sign(signed_content)).decode("ascii")
        if entry not in entries:
            entries.append(entry)
    return " ".join(entries)


def build_headers(
    msg_id: str,
    body: bytes,
    secrets: list[str],
    now: float | None = None,
    signing_keys: Sequence[str] = (),
) -> dict[str, str]:
    """Return the Standard Webhooks headers for one attempt.

    ``webhook-id`` and ``webhook-timestamp`` are always present (the id is the receiver's
    idempotency key even for unsigned endpoints); ``webhook-signature`` only when at least
    one secret or signing key is configured. Call this again for every attempt: the
    timestamp must be fresh.
    """
    timestamp = int(time.time() if now is None else now)
    headers = {HEADER_ID: msg_id, HEADER_TIMESTAMP: str(timestamp)}
    if secrets or signing_keys:
        headers[HEADER_SIGNATURE] = sign(secrets, msg_id, timestamp, body, signing_keys)
    return headers
