"""How deliveries are kept in Redis: key names, the record's fields, and atomic scripts.

One *event* (a job's final outcome, id ``webhook-id``) becomes one *delivery* (that event to the
job's webhook, with a state), which makes one or more *attempts* (HTTP tries, logged).

Keys (prefix ``netpulse:wh:``):
- ``d:<delivery>``        hash, the delivery record (fields in :data:`RECORD_FIELDS`);
- ``a:<delivery>``        list of attempt records (JSON), the delivery log;
- ``due:<tag>``           sorted set delivery -> Unix time it is due, one per destination origin
                          (pending deliveries only; a claimed one is due again when its lease ends);
- ``due-origins``         sorted set origin tag -> the earliest due time in that origin's set
                          (never later; may be earlier until the next claim corrects it), so the
                          delivery service claims per origin, skipping busy or backed-off ones;
- ``due``                 the single due set of earlier versions (delivery -> due time); the
                          service moves what it finds there into the per-origin sets at start;
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
DUE_ORIGINS = PREFIX + "due-origins"
LEGACY_DUE = PREFIX + "due"
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


#: The tag filing ids that carry none (not made by this version; kept deliverable).
UNTAGGED = "00000000"


def filing_tag(delivery_id: str) -> str:
    """The tag whose due set holds ``delivery_id``."""
    return tag_of(delivery_id) or UNTAGGED


def due_key_of(delivery_id: str) -> str:
    """The due set holding ``delivery_id``."""
    return due_key(filing_tag(delivery_id))


def delivery_key(delivery_id: str) -> str:
    return f"{PREFIX}d:{delivery_id}"


def attempts_key(delivery_id: str) -> str:
    return f"{PREFIX}a:{delivery_id}"


def job_key(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def final_key(job_id: str) -> str:
    return f"{PREFIX}final:{job_id}"


# The scripts use only commands of Redis 5 (no ZADD LT/GT, which need 6.2).

#: Lua helpers. ``reindex``: after a change to an origin's due set, index the origin by its
#: earliest due time, or drop it when the set is empty. ``index_at_most``: make sure the
#: origin is indexed no later than ``score`` (a delivery of it is due then).
_HELPERS = """
local function reindex(due, origins, tag)
  local first = redis.call('ZRANGE', due, 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('ZADD', origins, first[2], tag)
  else
    redis.call('ZREM', origins, tag)
  end
end
local function index_at_most(origins, tag, score)
  local current = redis.call('ZSCORE', origins, tag)
  if (not current) or tonumber(current) > tonumber(score) then
    redis.call('ZADD', origins, score, tag)
  end
end
"""

#: Record a new delivery unless the job already has its final event.
#: KEYS: final, delivery, origin's due set, origin index, all, job, wake.
#: ARGV: delivery id, now, retention, origin tag, then field/value pairs of the record.
RECORD_SCRIPT = (
    _HELPERS
    + """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3]) == false then
  return 0
end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
index_at_most(KEYS[4], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[6], ARGV[1])
redis.call('EXPIRE', KEYS[6], ARGV[3])
redis.call('LPUSH', KEYS[7], ARGV[1])
redis.call('LTRIM', KEYS[7], 0, 999)
return 1
"""
)

#: Set when a delivery is next due (redelivery: now; a backed-off destination: when its
#: back-off ends). ARGV[4] '1' only changes a delivery that is in the set (one being worked
#: on, whose outcome will be written by FINISH). KEYS: origin's due set, origin index.
#: ARGV: delivery id, due time, origin tag, only-if-present flag.
SCHEDULE_SCRIPT = (
    _HELPERS
    + """
if ARGV[4] == '1' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
index_at_most(KEYS[2], ARGV[3], ARGV[2])
return 1
"""
)

#: Extend the leases of deliveries this process is still working on (waiting for a slot or
#: in flight), so none becomes due again and is claimed a second time. Only raises a due time
#: and only for deliveries still in the set. KEYS: due set. ARGV: lease end, then ids.
RENEW_SCRIPT = """
local renewed = 0
for i = 2, #ARGV do
  local current = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if current and tonumber(current) < tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
    renewed = renewed + 1
  end
end
return renewed
"""

#: Lease up to N due deliveries of one origin: move their due time to now + lease, so a
#: crashed service's work comes back by itself. KEYS: origin's due set, origin index.
#: ARGV: now, lease seconds, N, origin tag.
CLAIM_SCRIPT = (
    _HELPERS
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local until_ = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], until_, id) end
reindex(KEYS[1], KEYS[2], ARGV[4])
return ids
"""
)

#: Store an attempt's outcome: append it to the log, and, if no other attempt was recorded
#: since this one started (the record's ``attempts`` is still ARGV[6]), update the record and
#: either schedule the next attempt or take the delivery out of its due set. A stale outcome
#: (a second attempt of the same delivery after a lost lease) is logged but changes nothing,
#: so it cannot turn a delivered event back into a pending one. Returns 1, or 0 when stale.
#: KEYS: delivery, attempts, origin's due set, origin index. ARGV: delivery id, attempt
#: (JSON), retention, next attempt time or '', origin tag, attempts before this one, then
#: field/value pairs for the record.
FINISH_SCRIPT = (
    _HELPERS
    + """
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
local before = redis.call('HGET', KEYS[1], 'attempts')
if not before or before ~= ARGV[6] then
  return 0
end
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
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
    _HELPERS
    + """
redis.call('ZREM', KEYS[1], ARGV[1])
reindex(KEYS[1], KEYS[2], ARGV[2])
return 1
"""
)


async def migrate_legacy_due(conn: Any, batch: int = 500) -> int:
    """Move deliveries from the single due set of earlier versions into the per-origin sets
    (same due times); return how many. Safe to run from several processes at once.

    ``conn`` is an asyncio Redis client (the delivery service runs this at start).
    """
    moved = 0
    while True:
        entries = await conn.zrange(LEGACY_DUE, 0, batch - 1, withscores=True)
        if not entries:
            return moved
        pipe = conn.pipeline(transaction=True)
        for raw_id, score in entries:
            delivery_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            tag = filing_tag(delivery_id)
            pipe.eval(SCHEDULE_SCRIPT, 2, due_key(tag), DUE_ORIGINS, delivery_id, score, tag, "0")
            pipe.zrem(LEGACY_DUE, raw_id)
        await pipe.execute()
        moved += len(entries)


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
    #: ``webhook`` as stored (JSON): the delivery service validates it for each attempt
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
