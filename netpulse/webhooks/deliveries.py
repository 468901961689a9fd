"""The delivery log as the API reads it, and redelivery.

Redelivery keeps the ``webhook-id`` (receivers deduplicate on it) and starts a fresh retry
budget; the attempts made so far stay in the log.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis

from netpulse.webhooks import store


class DeliveryNotFound(LookupError):
    pass


def _load(conn: Redis, delivery_ids: list[str]) -> list[store.Delivery]:
    pipe = conn.pipeline(transaction=False)
    for delivery_id in delivery_ids:
        pipe.hgetall(store.delivery_key(delivery_id))
    return [store.Delivery.from_hash(raw) for raw in pipe.execute() if raw]


def attempts(conn: Redis, delivery_id: str) -> list[dict[str, Any]]:
    return [json.loads(a) for a in conn.lrange(store.attempts_key(delivery_id), 0, -1)]


def get(conn: Redis, delivery_id: str, with_attempts: bool = True) -> dict[str, Any]:
    found = _load(conn, [delivery_id])
    if not found:
        raise DeliveryNotFound(f"no webhook delivery {delivery_id!r} (unknown or expired)")
    view = found[0].public()
    if with_attempts:
        view["attempt_log"] = attempts(conn, delivery_id)
    return view


def for_job(conn: Redis, job_id: str) -> list[dict[str, Any]]:
    ids = sorted(store.members(conn.smembers(store.job_key(job_id))))
    views = []
    for delivery in sorted(_load(conn, ids), key=lambda d: d.created_at):
        view = delivery.public()
        view["attempt_log"] = attempts(conn, delivery.id)
        views.append(view)
    return views


def search(
    conn: Redis, state: str | None = None, since: float | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Deliveries created since ``since`` (newest first), optionally in one state."""
    low = since if since is not None else "-inf"
    found: list[dict[str, Any]] = []
    offset = 0
    page = max(limit, 100)
    while len(found) < limit:
        ids = conn.zrevrangebyscore(store.ALL, "+inf", low, start=offset, num=page)
        if not ids:
            break
        offset += len(ids)
        for delivery in _load(conn, store.members(ids)):
            if state is None or delivery.state == state:
                found.append(delivery.public())
    found.sort(key=lambda d: d["created_at"], reverse=True)
    return found[:limit]


def redeliver(conn: Redis, delivery_id: str) -> dict[str, Any]:
    """Send the same event again (same webhook-id), now, with a fresh retry budget."""
    key = store.delivery_key(delivery_id)
    if not conn.exists(key):
        raise DeliveryNotFound(f"no webhook delivery {delivery_id!r} (unknown or expired)")
    now = time.time()
    tag = store.filing_tag(delivery_id)
    pipe = conn.pipeline(transaction=True)
    fields: dict[Any, Any] = store.redelivery_fields(now)  # redis-py's key type is invariant
    pipe.hset(key, mapping=fields)
    store.scripts(conn).schedule(delivery_id, tag, now, client=pipe)
    pipe.lpush(store.WAKE, delivery_id)
    pipe.execute()
    return get(conn, delivery_id, with_attempts=False)


def recover(conn: Redis, since: float) -> list[str]:
    """Redeliver every failed delivery created since ``since``; return their ids."""
    ids = store.members(conn.zrangebyscore(store.ALL, since, "+inf"))
    failed = [d.id for d in _load(conn, ids) if d.state == store.FAILED]
    for delivery_id in failed:
        redeliver(conn, delivery_id)
    return failed
