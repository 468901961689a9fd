"""The built-in credential store (provider ``local``): credentials kept in Redis, every
value sealed (``security.sealing``), for teams without Vault.

One hash per credential (``keys.credential_key``): each field sealed, plus
``_created_at`` / ``_updated_at`` (Unix seconds); the names in a set
(``keys.CREDENTIAL_INDEX``). Written by ``PUT /credentials/{name}`` and ``netpulse
credential set``; read by the ``local`` provider where a job runs.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from netpulse.keys import CREDENTIAL_INDEX, credential_key
from netpulse.models.credential import FILLED, CredentialInfo
from netpulse.security.sealing import sealer

_CREATED, _UPDATED = "_created_at", "_updated_at"


def put(conn: Redis, name: str, values: dict[str, str]) -> CredentialInfo:
    """Store (replace) the credential ``name`` with ``values``; its creation time kept."""
    box = sealer()
    key = credential_key(name)
    now = time.time()
    created = conn.hget(key, _CREATED)
    fields = {field: box.seal(value) for field, value in values.items() if field in FILLED}
    mapping: dict[Any, Any] = {**fields, _UPDATED: now}
    mapping[_CREATED] = float(created) if created is not None else now
    pipe = conn.pipeline(transaction=True)
    pipe.delete(key)
    pipe.hset(key, mapping=mapping)
    pipe.sadd(CREDENTIAL_INDEX, name)
    pipe.execute()
    found = info(conn, name)
    assert found is not None
    return found


def _stored(conn: Redis, name: str) -> dict[str, str]:
    raw: dict[bytes, bytes] = conn.hgetall(credential_key(name))  # type: ignore[assignment]
    return {k.decode(): v.decode() for k, v in raw.items()}


def read(conn: Redis, name: str) -> dict[str, str] | None:
    """The credential's values, opened (None when there is no such credential)."""
    stored = _stored(conn, name)
    if not stored:
        return None
    box = sealer()
    return {k: box.open(v) for k, v in stored.items() if not k.startswith("_")}


def exists(conn: Redis, name: str) -> bool:
    return bool(conn.exists(credential_key(name)))


def info(conn: Redis, name: str) -> CredentialInfo | None:
    stored = _stored(conn, name)
    if not stored:
        return None
    return CredentialInfo(
        name=name,
        fields=sorted(k for k in stored if not k.startswith("_")),
        created_at=datetime.fromtimestamp(float(stored[_CREATED]), UTC),
        updated_at=datetime.fromtimestamp(float(stored[_UPDATED]), UTC),
    )


def all_info(conn: Redis) -> list[CredentialInfo]:
    members: set[bytes] = conn.smembers(CREDENTIAL_INDEX)  # type: ignore[assignment]
    names = sorted(n.decode() for n in members)
    return [i for i in (info(conn, n) for n in names) if i is not None]


def delete(conn: Redis, name: str) -> bool:
    pipe = conn.pipeline(transaction=True)
    pipe.delete(credential_key(name))
    pipe.srem(CREDENTIAL_INDEX, name)
    removed, _ = pipe.execute()
    return bool(removed)
