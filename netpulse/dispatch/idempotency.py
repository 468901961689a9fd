"""Idempotent submission: a client that retries ``POST /device/exec`` or ``/device/bulk``
with the same ``Idempotency-Key`` (after a timeout, a dropped connection) gets the first
reply again, with the same job ids, and nothing is queued twice: a config is never pushed
twice because an answer was lost.

The first request with a key sets a *pending* marker (``SET NX``); a second one while it is
pending gets 409 (try again), one after it gets the stored reply; the same key with another
body is a 422. Keys are kept per API key (one client's key never answers another's) for
:data:`KEEP_SECONDS`; only the key's digest is in the Redis key name.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from redis import Redis

from netpulse.errors import Conflict, Unprocessable
from netpulse.keys import idempotency_key

HEADER = "Idempotency-Key"
#: How long a first reply is kept for retries.
KEEP_SECONDS = 24 * 3600
#: How long a pending marker lives if its request dies before it answers.
PENDING_SECONDS = 120
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True)
class Replay:
    """The stored first reply."""

    status_code: int
    body: str


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _redis_key(principal: str, key: str) -> str:
    if not _KEY_PATTERN.fullmatch(key):
        raise Unprocessable(
            f"the {HEADER} header takes 1 to 255 printable ASCII characters without spaces"
        )
    return idempotency_key(principal, digest(key.encode()))


def begin(conn: Redis, principal: str, key: str, body_digest: str) -> Replay | None:
    """None: the first request with this key (go ahead, then :func:`finish` or
    :func:`abandon`). A :class:`Replay` of the first reply otherwise."""
    name = _redis_key(principal, key)
    pending = json.dumps({"state": "pending", "body": body_digest})
    if conn.set(name, pending, nx=True, ex=PENDING_SECONDS):
        return None
    raw = conn.get(name)
    if raw is None:  # it expired between the two calls: this one goes ahead
        return begin(conn, principal, key, body_digest)
    stored = json.loads(raw)
    if stored["body"] != body_digest:
        raise Unprocessable(
            f"this {HEADER} was used with another request body in the last 24 h; "
            "use a new key for a new request"
        )
    if stored["state"] == "pending":
        raise Conflict(f"a request with this {HEADER} is still being processed; retry in a moment")
    return Replay(stored["status_code"], stored["reply"])


def finish(
    conn: Redis, principal: str, key: str, body_digest: str, status_code: int, reply: str
) -> None:
    """Keep the first reply for retries."""
    done = {"state": "done", "body": body_digest, "status_code": status_code, "reply": reply}
    conn.set(_redis_key(principal, key), json.dumps(done), ex=KEEP_SECONDS)


def abandon(conn: Redis, principal: str, key: str) -> None:
    """The first request failed before anything was queued: a retry may go ahead."""
    conn.delete(_redis_key(principal, key))
