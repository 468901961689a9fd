"""How deliveries are kept in Redis: key names, the record's fields, and atomic scripts.

One *event* (a job's final outcome, id ``webhook-id``) becomes one *delivery* (that event to the
job's webhook, with a state), which makes one or more *attempts* (HTTP tries, logged).

Keys (prefix ``netpulse:wh:``):
- ``d:<delivery>``        hash, the delivery record (fields in :data:`RECORD_FIELDS`);
- ``a:<delivery>``        list of attempt records (JSON), the delivery log;
- ``due:<tag>``           sorted set delivery -> Unix time it is due, one per destination origin
                          (pending deliveries only; a claimed one is due again when its lease ends);
- ``due``                 sorted set origin tag -> the earliest due time in that origin's set, so
                          the delivery service claims per origin, skipping busy or backed-off ones;
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
DUE_ORIGINS = PREFIX + "due"
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


def due_key(tag: str) -> str:
    return f"{PREFIX}due:{tag}"


def due_key_of(delivery_id: str) -> str:
    """The due set holding ``delivery_id`` (ids without an origin tag share one set)."""
    return due_key(tag_of(delivery_id) or UNTAGGED)


#: The due set of ids that carry no origin tag (not made by this version; kept deliverable).
UNTAGGED = "00000000"


def delivery_key(delivery_id: str) -> str:
    return f"{PREFIX}d:{delivery_id}"


def attempts_key(delivery_id: str) -> str:
    return f"{PREFIX}a:{delivery_id}"


def job_key(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def final_key(job_id: str) -> str:
    return f"{PREFIX}final:{job_id}"


#: After a change to an origin's due set: index the origin by its earliest due time, or drop
#: it when the set is empty. KEYS[1] due set, KEYS[2] origin index; ARGV[1] origin tag.
_REINDEX = """
local function reindex(due, origins, tag)
  local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('ZADD', origins, first[2], tag)
  else
    redis.call('ZREM', origins, tag)
  end
end
"""

#: Record a new delivery unless the job already has its final event.
#: KEYS: final, delivery, origin's due set, origin index, all, job, wake.
#: ARGV: delivery id, now, retention, origin tag, then field/value pairs of the record.
RECORD_SCRIPT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3]) == false then
  return 0
end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[4], 'LT', ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[6], ARGV[1])
redis.call('EXPIRE', KEYS[6], ARGV[3])
redis.call('LPUSH', KEYS[7], ARGV[1])
redis.call('LTRIM', KEYS[7], 0, 999)
return 1
"""

#: Make a delivery due now (redelivery). KEYS: origin's due set, origin index.
#: ARGV: delivery id, now, origin tag.
SCHEDULE_NOW_SCRIPT = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'LT', ARGV[2], ARGV[3])
return 1
"""

#: Lease up to N due deliveries of one origin: move their due time to now + lease, so a
#: crashed service's work comes back by itself. KEYS: origin's due set, origin index.
#: ARGV: now, lease seconds, N, origin tag.
CLAIM_SCRIPT = (
    _REINDEX
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local until_ = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], until_, id) end
reindex(KEYS[1], KEYS[2], ARGV[4])
return ids
"""
)

#: Store an attempt's outcome: append it to the log, update the record, and either schedule
#: the next attempt or take the delivery out of its due set. KEYS: delivery, attempts,
#: origin's due set, origin index. ARGV: delivery id, attempt (JSON), retention, next attempt
#: time or '', origin tag, then field/value pairs for the record.
FINISH_SCRIPT = (
    _REINDEX
    + """
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 1 then
  local fields = {}
  for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', KEYS[1], unpack(fields))
end
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
else
  redis.call('ZREM', KEYS[3], ARGV[1])
end
reindex(KEYS[3], KEYS[4], ARGV[5])
return 1
"""
)

#: Take a delivery that is no longer pending (or gone) out of its due set.
#: KEYS: origin's due set, origin index. ARGV: delivery id, origin tag.
DROP_SCRIPT = (
    _REINDEX
    + """
redis.call('ZREM', KEYS[1], ARGV[1])
reindex(KEYS[1], KEYS[2], ARGV[2])
return 1
"""
)


def pending_count(conn: Any) -> int:
    """Deliveries waiting for an attempt, over all origins (the backlog)."""
    tags = [t.decode() for t in conn.zrange(DUE_ORIGINS, 0, -1)]
    if not tags:
        return 0
    pipe = conn.pipeline(transaction=False)
    for tag in tags:
        pipe.zcard(due_key(tag))
    return int(sum(pipe.execute()))


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
    #: ``webhook`` as stored (JSON), a cache key for its validated form
    webhook_json: str
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
            webhook_json=text("webhook", "{}"),
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
