"""The format of a Standard Webhooks signing secret: ``whsec_`` + base64 of 24 to 64 bytes.

Checked wherever a secret is given (the settings, a request's ``webhook.secret``) and used
by ``netpulse.webhooks.signing`` to get the HMAC key. Kept apart from signing so that the
settings and the request models, low in the layering, can check a secret without importing
the webhook package.
"""

from __future__ import annotations

import base64
import binascii

SECRET_PREFIX = "whsec_"
SECRET_MIN_BYTES = 24
SECRET_MAX_BYTES = 64


def validate_secret(secret: str) -> str:
    """Check a secret and return it in canonical form (surrounding whitespace removed).

    The ``whsec_`` prefix is required. A bare base64 string is refused even though the
    reference library would accept it: the prefix makes secrets recognisable to secret
    scanners and log redaction, and it tells a signing secret apart from any other base64
    token pasted by mistake. Missing ``=`` padding is tolerated, as the reference library does.
    """
    decode_secret(secret)
    return secret.strip()


def decode_secret(secret: str) -> bytes:
    """Return the HMAC key inside a secret, or raise ValueError saying what is wrong."""
    if not isinstance(secret, str):
        raise ValueError(f"A webhook secret must be a string, not {type(secret).__name__}.")
    text = secret.strip()
    if not text.startswith(SECRET_PREFIX):
        raise ValueError(
            f"A webhook secret must start with '{SECRET_PREFIX}' followed by base64 "
            f"(generate one with netpulse.webhooks.signing.generate_secret())."
        )
    encoded = text[len(SECRET_PREFIX) :]
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            f"The webhook secret after '{SECRET_PREFIX}' is not valid base64."
        ) from None
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        raise ValueError(
            f"A webhook secret must hold {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} random bytes; "
            f"this one holds {len(key)}."
        )
    return key


#: An Ed25519 signing key (its 32-byte seed, base64) and a public key, as Standard Webhooks
#: writes them (``v1a`` signatures, ``webhooks.asymmetric_signing_keys``).
SIGNING_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"


def b64_key(value: str, prefix: str, what: str) -> bytes:
    """The 32 raw bytes of a ``whsk_``/``whpk_`` key; ValueError (never quoting it) else."""
    if not value.startswith(prefix):
        raise ValueError(f"{what} must start with {prefix!r}")
    try:
        raw = base64.b64decode(value[len(prefix) :], validate=True)
    except ValueError:
        raise ValueError(f"{what} is not valid base64 after {prefix!r}") from None
    if len(raw) != 32:
        raise ValueError(f"{what} must hold 32 bytes (an Ed25519 key), not {len(raw)}")
    return raw


def validate_signing_key(value: str) -> str:
    """An Ed25519 signing key ``whsk_<base64 of the 32-byte seed>``; ValueError otherwise."""
    b64_key(value, SIGNING_KEY_PREFIX, "an asymmetric signing key")
    return value
