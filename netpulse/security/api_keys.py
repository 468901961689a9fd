"""Scoped API keys: who may read, run, change and administer.

Each key has a name and a set of scopes (:class:`Scope`). Only its SHA-256 digest is stored
(``keys.API_KEY_DIGESTS``, digest -> name) next to its record (``keys.API_KEYS``, name ->
:class:`ApiKeyRecord` as JSON): a key is 32 random bytes, so a fast digest is as safe as a
slow password hash and costs one hash per request. The key itself is shown once, when made.

The single ``server.api_key`` of the settings stays: it is the key named
:data:`SETTINGS_KEY_NAME` and holds every scope (what one key meant before scopes).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from redis import Redis

from netpulse.errors import Conflict, NotFound, Unprocessable
from netpulse.keys import API_KEY_DIGESTS, API_KEYS


class Scope(StrEnum):
    """What a key may do; each route needs one (``docs/security.md`` lists them)."""

    READ = "read"  # jobs, workers, deliveries, stats, metrics, stored files
    EXEC = "exec"  # command jobs, connection tests, templates, cancelling jobs
    CONFIG = "config"  # jobs that change devices: config lines, file transfers
    ADMIN = "admin"  # workers, credentials, redelivery and recovery, keys; implies all
    AUDIT = "audit"  # the audit trail (read only; admin may read it too)


#: The name under which the settings' ``server.api_key`` submits jobs.
SETTINGS_KEY_NAME = "default"
#: A key's name: what ``submitted_by`` shows.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
#: Made keys start with this, so secret scanners and people recognise one.
KEY_PREFIX = "npk_"


@dataclass(frozen=True)
class Principal:
    """Who a request is: the key's name and what it may do."""

    name: str
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes


#: The settings' key: every scope.
SETTINGS_PRINCIPAL = Principal(SETTINGS_KEY_NAME, frozenset(Scope))


class ApiKeyRecord(BaseModel):
    """A stored key as ``GET /keys`` shows it: never the key, nor its digest."""

    name: str
    scopes: list[Scope]
    created_at: datetime
    hint: str = Field(description="The key's last four characters, to tell keys apart.")


class NewApiKey(ApiKeyRecord):
    """``POST /keys``' reply: the record and, this once, the key."""

    key: str


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def create(conn: Redis, name: str, scopes: list[Scope]) -> NewApiKey:
    """Make a key; ``Conflict`` when the name is taken (revoke it first)."""
    if not re.fullmatch(NAME_PATTERN, name) or name == SETTINGS_KEY_NAME:
        raise Unprocessable(
            f"a key's name takes letters, digits and _ . - (at most 64), and is not "
            f"{SETTINGS_KEY_NAME!r}; got {name!r}"
        )
    if not scopes:
        raise Unprocessable(f"give at least one scope: {', '.join(s.value for s in Scope)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        name=name,
        scopes=sorted(set(scopes)),
        created_at=datetime.fromtimestamp(int(time.time()), UTC),
        hint=key[-4:],
    )
    stored = json.dumps({**record.model_dump(mode="json"), "digest": digest(key)})
    if not conn.hsetnx(API_KEYS, name, stored):
        raise Conflict(f"a key named {name!r} exists; revoke it first")
    conn.hset(API_KEY_DIGESTS, digest(key), name)
    return NewApiKey(**record.model_dump(), key=key)


def _records(conn: Redis) -> dict[str, dict]:
    raw: dict[bytes, bytes] = conn.hgetall(API_KEYS)  # type: ignore[assignment]
    return {k.decode(): json.loads(v) for k, v in raw.items()}


def listing(conn: Redis) -> list[ApiKeyRecord]:
    """Every stored key's record, by name."""
    records = _records(conn)
    return [ApiKeyRecord.model_validate(records[name]) for name in sorted(records)]


def revoke(conn: Redis, name: str) -> None:
    """Forget a key at once: the next request with it gets 403."""
    raw = conn.hget(API_KEYS, name)
    if raw is None:
        raise NotFound(f"no API key named {name!r}")
    with conn.pipeline(transaction=True) as pipe:
        pipe.hdel(API_KEY_DIGESTS, json.loads(raw)["digest"])
        pipe.hdel(API_KEYS, name)
        pipe.execute()


def lookup(conn: Redis, key: str) -> Principal | None:
    """Who holds ``key`` (None for no such key): two HGETs, the digest's then the name's."""
    name = conn.hget(API_KEY_DIGESTS, digest(key))
    if name is None:
        return None
    raw = conn.hget(API_KEYS, name)
    if raw is None:  # revoked between the two reads
        return None
    record = json.loads(raw)
    return Principal(record["name"], frozenset(Scope(s) for s in record["scopes"]))
