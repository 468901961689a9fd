"""How deliveries are kept in Redis: key names, the record's fields, and atomic scripts.

One *event* (a job's final outcome, id ``webhook-id``) becomes one *delivery* (that event to the
job's webhook, with a state), which makes one or more *attempts* (HTTP tries, logged).

Keys (prefix ``netpulse:wh:``):
- ``d:<delivery>``        hash, the delivery record (fields in :data:`RECORD_FIELDS`);
- ``a:<delivery>``        list of attempt records (JSON), the delivery log;
- ``due``                 sorted set delivery -> Unix time it is due (pending deliveries only);
- ``all``                 sorted set delivery -> creation time (listing, ``since``, retention);
- ``job:<job>``           set of the job's deliveries;
- ``final:<job>``         marker making the job's final event unique (SET NX);
- ``wake``                list the delivery service blocks on, so new events go out at once;
- ``stats``               hash of counters and latency histogram buckets (for /metrics).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

PREFIX = "netpulse:wh:"
DUE = PREFIX + "due"
ALL = PREFIX + "all"
WAKE = PREFIX + "wake"
STATS = PREFIX + "stats"

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
STATES = (PENDING, SUCCEEDED, FAILED)


def new_delivery_id(origin: str) -> str:
    """``dlv_<origin tag>_<random>``: the tag lets the delivery loop see a delivery's
    destination from its id alone, and skip busy destinations without reading the record."""
    return f"dlv_{origin_tag(origin)}_{uuid.uuid4().hex[:24]}"


def origin_tag(origin: str) -> str:
    return hashlib.sha1(origin.encode()).hexdigest()[:8]


def tag_of(delivery_id: str) -> str | None:
    parts = delivery_id.split("_")
    return parts[1] if len(parts) == 3 else None


def delivery_key(delivery_id: str) -> str:
    return f"{PREFIX}d:{delivery_id}"


def attempts_key(delivery_id: str) -> str:
    return f"{PREFIX}a:{delivery_id}"


def job_key(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def final_key(job_id: str) -> str:
    return f"{PREFIX}final:{job_id}"


#: Record a new delivery unless the job already has its final event.
#: KEYS: final, delivery, due, all, job, wake. ARGV: delivery id, now, retention, then
#: field/value pairs of the record.
RECORD_SCRIPT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3]) == false then
  return 0
end
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('EXPIRE', KEYS[5], ARGV[3])
redis.call('LPUSH', KEYS[6], ARGV[1])
redis.call('LTRIM', KEYS[6], 0, 999)
return 1
"""

#: Lease up to N due deliveries: move their due time to now + lease, so a crashed service's
#: work comes back by itself. KEYS: due. ARGV: now, lease seconds, N.
CLAIM_SCRIPT = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local until_ = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], until_, id) end
return ids
"""


@dataclass
class Delivery:
    """A delivery record as the service and the API use it (secrets only in ``webhook``)."""

    id: str
    webhook_id: str
    job_id: str
    event_type: str
    caller: str
    url: str
    state: str
    created_at: float
    attempts: int
    retries_done: int
    next_at: float | None
    last_status_code: int | None
    last_error: str | None
    updated_at: float | None
    webhook: dict[str, Any]
    req: dict[str, Any]
    job: dict[str, Any]
    body: bytes

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> Delivery:
        def text(name: str, default: str = "") -> str:
            value = raw.get(name.encode())
            return value.decode() if value is not None else default

        def number(name: str) -> float | None:
            value = raw.get(name.encode())
            return float(value) if value not in (None, b"") else None

        return cls(
            id=text("id"),
            webhook_id=text("webhook_id"),
            job_id=text("job_id"),
            event_type=text("event_type"),
            caller=text("caller", "basic"),
            url=text("url"),
            state=text("state", PENDING),
            created_at=number("created_at") or 0.0,
            attempts=int(number("attempts") or 0),
            retries_done=int(number("retries_done") or 0),
            next_at=number("next_at"),
            last_status_code=int(number("last_status_code") or 0) or None,
            last_error=text("last_error") or None,
            updated_at=number("updated_at"),
            webhook=json.loads(text("webhook", "{}")),
            req=json.loads(text("req", "{}")),
            job=json.loads(text("job", "{}")),
            body=raw.get(b"body", b""),
        )

    def public(self) -> dict[str, Any]:
        """What the API shows: no headers, cookies, auth, secret or body."""
        return {
            "id": self.id,
            "webhook_id": self.webhook_id,
            "job_id": self.job_id,
            "event_type": self.event_type,
            "caller": self.caller,
            "url": self.url,
            "method": self.webhook.get("method", "POST"),
            "state": self.state,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "attempts": self.attempts,
            "next_attempt_at": self.next_at if self.state == PENDING else None,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
        }
