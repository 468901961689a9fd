"""How deliveries are kept in Redis: key names, the records, and atomic scripts.

The one owner of these facts: the outbox (inside device workers), the delivery process and
the API's delivery log use the types and script wrappers below (:class:`Delivery`,
:class:`JobSnapshot`, :class:`AttemptLogEntry`, :class:`AttemptChange`, :func:`scripts`)
and never spell a field name or a script's KEYS/ARGV.

One *event* (a job's final outcome, id ``webhook-id``) becomes one *delivery* (that event to the
job's webhook, with a state), which makes one or more *attempts* (HTTP tries, logged).

Keys (prefix ``netpulse:wh:``):
- ``d:<delivery>``        hash, the delivery record (:meth:`Delivery.to_hash`);
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

Endpoints (standing subscriptions, ``netpulse.webhooks.endpoints``):
- ``endpoints``           hash endpoint id -> its spec (JSON, secrets sealed), API-made ones;
- ``endpoints:version``   counter raised on every change of an endpoint or of its state, so
                          processes re-read the endpoints only when they changed;
- ``disabled``            set of disabled endpoint ids (the record script holds their events);
- ``failing``             set of endpoint ids with a failed delivery since their last success
                          (only their successes are reported to the health script);
- ``ep:<endpoint>``       hash, the endpoint's health (failing since, failed deliveries, held);
- ``held:<endpoint>``     sorted set delivery -> time held, the events kept while disabled;
- ``rate:<endpoint>``     the next free send slot of a rate-limited endpoint (GCRA).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from netpulse.runtime.scripts import PipelinedScript
from netpulse.runtime.scripts import load as load_scripts

PREFIX = "netpulse:wh:"
DUE_ORIGINS = PREFIX + "due-origins"
LEGACY_DUE = PREFIX + "due"
ALL = PREFIX + "all"
WAKE = PREFIX + "wake"
STATS = PREFIX + "stats"
ENDPOINTS = PREFIX + "endpoints"
ENDPOINTS_VERSION = PREFIX + "endpoints:version"
DISABLED = PREFIX + "disabled"
FAILING = PREFIX + "failing"


class DeliveryState(StrEnum):
    """Where a delivery stands: waiting for an attempt, delivered, or given up."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    #: kept while its endpoint is disabled: not attempted, sent if the endpoint is enabled
    #: again with ``replay_held``
    HELD = "held"


PENDING, SUCCEEDED, FAILED = DeliveryState.PENDING, DeliveryState.SUCCEEDED, DeliveryState.FAILED
HELD = DeliveryState.HELD


def new_delivery_id(origin: str) -> str:
    """``dlv_<origin tag>_<random>``: the tag lets the delivery loop see a delivery's
    destination from its id alone, and skip busy destinations without reading the record."""
    return f"dlv_{origin_tag(origin)}_{uuid.uuid4().hex[:24]}"


def origin_of(url: str) -> str:
    """``scheme://host:port`` of a webhook URL: the destination deliveries are filed by
    (fairness is per origin) and that the tag in a delivery id names."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


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


def final_key(event_key: str) -> str:
    return f"{PREFIX}final:{event_key}"


def endpoint_health_key(endpoint_id: str) -> str:
    return f"{PREFIX}ep:{endpoint_id}"


def held_key(endpoint_id: str) -> str:
    return f"{PREFIX}held:{endpoint_id}"


def rate_key(endpoint_id: str) -> str:
    return f"{PREFIX}rate:{endpoint_id}"


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

#: Record a new delivery unless this event was recorded for this destination already. A
#: delivery to a disabled endpoint is stored as held (kept, not due) and returns 2.
#: KEYS: final, delivery, origin's due set, origin index, all, job, wake, disabled set,
#: endpoint's held set, endpoint's health. ARGV: delivery id, now, retention, origin tag,
#: endpoint id ('' for a request's own webhook), then field/value pairs of the record.
RECORD_SCRIPT = (
    _HELPERS
    + """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3]) == false then
  return 0
end
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[6], ARGV[1])
redis.call('EXPIRE', KEYS[6], ARGV[3])
if ARGV[5] ~= '' and redis.call('SISMEMBER', KEYS[8], ARGV[5]) == 1 then
  redis.call('HSET', KEYS[2], 'state', 'held', 'next_at', '')
  redis.call('ZADD', KEYS[9], ARGV[2], ARGV[1])
  redis.call('EXPIRE', KEYS[9], ARGV[3])
  redis.call('HINCRBY', KEYS[10], 'held', 1)
  return 2
end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
index_at_most(KEYS[4], ARGV[4], ARGV[2])
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

#: The same, returning each leased delivery's record with it (one round trip instead of a
#: claim and a read: the delivery service's path from an event to its attempt).
#: KEYS: origin's due set, origin index. ARGV: now, lease seconds, N, origin tag, the
#: delivery key prefix. Returns {id1, record1, id2, record2, ...} (a record as HGETALL).
CLAIM_RECORDS_SCRIPT = (
    _HELPERS
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local until_ = tonumber(ARGV[1]) + tonumber(ARGV[2])
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], until_, id)
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', ARGV[5] .. id)
end
reindex(KEYS[1], KEYS[2], ARGV[4])
return out
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


def webhook_id_of(job_id: str) -> str:
    """The event's ``webhook-id``: the same for every attempt and redelivery of the job's
    final event, so receivers can deduplicate on it."""
    return "msg_" + job_id.replace("-", "")


def _state(text: str) -> DeliveryState:
    try:
        return DeliveryState(text)
    except ValueError:  # written by a newer version: shown as pending, never lost
        return PENDING


def members(reply: Any) -> list[str]:
    """The members of a set or sorted-set reply (without scores) as text: NetPulse's clients
    read bytes, whatever redis-py's annotations allow."""
    return [m.decode() if isinstance(m, bytes) else str(m) for m in reply]


def pending_count(conn: Any) -> int:
    """Deliveries waiting for an attempt, over all origins (the backlog)."""
    tags = [t.decode() for t in conn.zrange(DUE_ORIGINS, 0, -1)]
    if not tags:
        return 0
    pipe = conn.pipeline(transaction=False)
    for tag in tags:
        pipe.zcard(due_key(tag))
    return int(sum(pipe.execute()))


def due_now_count(conn: Any, now: float) -> int:
    """Deliveries due now (waiting for a process to claim them), over all origins: the
    backlog that more delivery processes would clear (``netpulse up`` scales on it)."""
    tags = [t.decode() for t in conn.zrangebyscore(DUE_ORIGINS, "-inf", now)]
    if not tags:
        return 0
    pipe = conn.pipeline(transaction=False)
    for tag in tags:
        pipe.zcount(due_key(tag), "-inf", now)
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
    state: DeliveryState
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
    #: the endpoint this delivery goes to ('' for the request's own webhook)
    endpoint_id: str = ""
    #: the endpoint's ``max_per_second`` when the event was recorded
    max_per_second: float | None = None
    #: the send slot a rate-limited delivery has reserved (it waits until then, once)
    rate_slot: float | None = None

    @property
    def unique_key(self) -> str:
        """What makes the delivery unique: its event, and its endpoint if it has one."""
        return f"{self.job_id}@{self.endpoint_id}" if self.endpoint_id else self.job_id

    @classmethod
    def new(
        cls,
        *,
        delivery_id: str,
        job_id: str,
        event_type: str,
        caller: str,
        url: str,
        webhook_json: str,
        req: dict[str, Any],
        job: JobSnapshot,
        body: bytes,
        now: float,
        endpoint_id: str = "",
        max_per_second: float | None = None,
    ) -> Delivery:
        """A delivery of a newly recorded event: pending, due now, no attempt yet. A
        delivery to an endpoint has a ``webhook-id`` of its own (the event's and the
        endpoint's), so each receiver deduplicates its own copy."""
        webhook_id = webhook_id_of(job_id)
        if endpoint_id:
            webhook_id = f"{webhook_id}_{endpoint_id}"
        return cls(
            id=delivery_id,
            webhook_id=webhook_id,
            job_id=job_id,
            event_type=event_type,
            caller=caller,
            url=url,
            state=PENDING,
            created_at=now,
            attempts=0,
            retries_done=0,
            next_at=now,
            last_status_code=None,
            last_error=None,
            updated_at=now,
            webhook=json.loads(webhook_json),
            webhook_json=webhook_json,
            req=req,
            job=asdict(job),
            body=body,
            endpoint_id=endpoint_id,
            max_per_second=max_per_second,
        )

    def to_hash(self) -> dict[str, str | bytes | int | float]:
        """The record's fields as Redis stores them (the inverse of :meth:`from_hash`)."""
        return {
            "id": self.id,
            "webhook_id": self.webhook_id,
            "job_id": self.job_id,
            "event_type": self.event_type,
            "caller": self.caller,
            "url": self.url,
            "state": str(self.state),
            "created_at": self.created_at,
            "attempts": self.attempts,
            "retries_done": self.retries_done,
            "next_at": "" if self.next_at is None else self.next_at,
            "updated_at": "" if self.updated_at is None else self.updated_at,
            "last_status_code": self.last_status_code or "",
            "last_error": self.last_error or "",
            "webhook": self.webhook_json,
            "req": json.dumps(self.req),
            "job": json.dumps(self.job, default=str),
            "body": self.body,
            "endpoint": self.endpoint_id,
            "max_per_second": "" if self.max_per_second is None else self.max_per_second,
        }

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
            state=_state(text("state", PENDING)),
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
            endpoint_id=text("endpoint"),
            max_per_second=number("max_per_second"),
            rate_slot=number("rate_slot"),
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
            "endpoint_id": self.endpoint_id or None,
            "method": self.webhook.get("method", "POST"),
            "state": self.state,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "attempts": self.attempts,
            "next_attempt_at": self.next_at if self.state == PENDING else None,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
        }


@dataclass
class JobSnapshot:
    """The job as it was when its event was recorded (what a caller's ``job`` is), kept in
    the delivery record's ``job`` field."""

    id: str
    status: str
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    meta: dict[str, Any]

    @classmethod
    def from_record(cls, job: dict[str, Any]) -> JobSnapshot:
        return cls(
            id=str(job.get("id", "")),
            status=str(job.get("status", "")),
            created_at=job.get("created_at"),
            started_at=job.get("started_at"),
            ended_at=job.get("ended_at"),
            meta=dict(job.get("meta") or {}),
        )


@dataclass
class AttemptLogEntry:
    """One attempt in the delivery log (``a:<delivery>``, JSON), as the API shows it."""

    attempt: int
    at: float
    url: str
    status_code: int | None
    latency_ms: float
    verdict: str
    error: str | None
    remote_ip: str | None
    response_body: str | None
    next_attempt_at: float | None

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)


@dataclass
class AttemptChange:
    """What an attempt changes in its delivery record (written by FINISH_SCRIPT)."""

    state: DeliveryState
    attempts: int
    updated_at: float
    last_status_code: int | None
    last_error: str
    next_at: float | None
    #: set when the attempt used up one retry (the delivery stays pending)
    retries_done: int | None = None

    def to_fields(self) -> dict[str, str | int | float]:
        fields: dict[str, str | int | float] = {
            "state": str(self.state),
            "attempts": self.attempts,
            "updated_at": self.updated_at,
            "last_status_code": self.last_status_code or "",
            "last_error": self.last_error,
            "next_at": "" if self.next_at is None else self.next_at,
            "rate_slot": "",
        }
        if self.retries_done is not None:
            fields["retries_done"] = self.retries_done
        return fields


def new_delivery_fields(
    *,
    delivery_id: str,
    job_id: str,
    event_type: str,
    caller: str,
    url: str,
    webhook_json: str,
    req_json: str,
    job_json: str,
    body: bytes,
    now: float,
    endpoint_id: str = "",
    max_per_second: float | None = None,
) -> dict[str, Any]:
    """The stored fields of a new delivery (as :meth:`Delivery.to_hash` of
    :meth:`Delivery.new`), from parts already encoded once per event."""
    webhook_id = webhook_id_of(job_id)
    if endpoint_id:
        webhook_id = f"{webhook_id}_{endpoint_id}"
    return {
        "id": delivery_id,
        "webhook_id": webhook_id,
        "job_id": job_id,
        "event_type": event_type,
        "caller": caller,
        "url": url,
        "state": str(PENDING),
        "created_at": now,
        "attempts": 0,
        "retries_done": 0,
        "next_at": now,
        "updated_at": now,
        "last_status_code": "",
        "last_error": "",
        "webhook": webhook_json,
        "req": req_json,
        "job": job_json,
        "body": body,
        "endpoint": endpoint_id,
        "max_per_second": "" if max_per_second is None else max_per_second,
    }


def redelivery_fields(now: float) -> dict[str, str | int | float]:
    """What a redelivery resets: pending, a fresh retry budget, due now."""
    return {"state": str(PENDING), "retries_done": 0, "next_at": now}


def _flat(fields: dict[str, Any]) -> list[Any]:
    pairs: list[Any] = []
    for name, value in fields.items():
        pairs.extend((name, value))
    return pairs


class Scripts:
    """The delivery scripts of one Redis connection (sync or asyncio), registered once.

    Each method names its keys and arguments, so no caller spells a script's KEYS/ARGV
    layout; pass ``client=pipe`` to queue the call in a pipeline. With an asyncio connection
    every method returns an awaitable.
    """

    def __init__(self, conn: Any) -> None:
        self._record = PipelinedScript(conn, RECORD_SCRIPT)
        self._schedule = PipelinedScript(conn, SCHEDULE_SCRIPT)
        self._renew = PipelinedScript(conn, RENEW_SCRIPT)
        self._claim = PipelinedScript(conn, CLAIM_SCRIPT)
        self._claim_records = PipelinedScript(conn, CLAIM_RECORDS_SCRIPT)
        self._finish = PipelinedScript(conn, FINISH_SCRIPT)
        self._drop = PipelinedScript(conn, DROP_SCRIPT)
        self.all = [
            self._record,
            self._schedule,
            self._renew,
            self._claim,
            self._claim_records,
            self._finish,
            self._drop,
        ]

    def record(self, delivery: Delivery, tag: str, retention: int, client: Any = None) -> Any:
        """Store a new delivery unless its event was recorded for its destination already
        (returns 0); 2 when it is held (its endpoint is disabled), else 1."""
        return self.record_fields(delivery.to_hash(), tag, retention, client)

    def record_fields(
        self, fields: dict[str, Any], tag: str, retention: int, client: Any = None
    ) -> Any:
        """:meth:`record` from a new delivery's stored fields (:func:`new_delivery_fields`:
        the outbox builds them without a :class:`Delivery`, sharing the event's encoded
        parts between its destinations)."""
        delivery_id, job_id, endpoint = fields["id"], fields["job_id"], fields["endpoint"]
        unique = f"{job_id}@{endpoint}" if endpoint else job_id
        return self._record(
            keys=[
                final_key(unique),
                delivery_key(delivery_id),
                due_key(tag),
                DUE_ORIGINS,
                ALL,
                job_key(job_id),
                WAKE,
                DISABLED,
                held_key(endpoint or "-"),
                endpoint_health_key(endpoint or "-"),
            ],
            args=[delivery_id, fields["created_at"], retention, tag, endpoint, *_flat(fields)],
            client=client,
        )

    def schedule(
        self, delivery_id: str, tag: str, at: float, only_if_due: bool = False, client: Any = None
    ) -> Any:
        """Make the delivery due at ``at``; with ``only_if_due``, only if it is in its due
        set (being worked on)."""
        return self._schedule(
            keys=[due_key(tag), DUE_ORIGINS],
            args=[delivery_id, at, tag, "1" if only_if_due else "0"],
            client=client,
        )

    def renew(self, tag: str, until: float, delivery_ids: list[str], client: Any = None) -> Any:
        """Extend the leases of deliveries still held, to ``until``."""
        return self._renew(keys=[due_key(tag)], args=[until, *delivery_ids], client=client)

    def claim_records(
        self, tag: str, now: float, lease: float, budget: int, client: Any = None
    ) -> Any:
        """Lease up to ``budget`` due deliveries of the origin; a flat reply of ids and their
        records (:func:`claimed_records` reads it)."""
        return self._claim_records(
            keys=[due_key(tag), DUE_ORIGINS],
            args=[now, lease, budget, tag, delivery_key("")],
            client=client,
        )

    def claim(self, tag: str, now: float, lease: float, budget: int, client: Any = None) -> Any:
        """Lease up to ``budget`` due deliveries of the origin; their ids."""
        return self._claim(
            keys=[due_key(tag), DUE_ORIGINS], args=[now, lease, budget, tag], client=client
        )

    def finish(
        self,
        delivery_id: str,
        tag: str,
        attempts_before: int,
        entry: AttemptLogEntry,
        change: AttemptChange,
        retention: int,
        client: Any = None,
    ) -> Any:
        """Log the attempt and apply its change, unless another attempt finished meanwhile."""
        return self._finish(
            keys=[delivery_key(delivery_id), attempts_key(delivery_id), due_key(tag), DUE_ORIGINS],
            args=[
                delivery_id,
                entry.to_json(),
                retention,
                "" if change.next_at is None else change.next_at,
                tag,
                attempts_before,
                *_flat(change.to_fields()),
            ],
            client=client,
        )

    def drop(self, delivery_id: str, tag: str, client: Any = None) -> Any:
        """Forget a due entry whose record is gone (expired)."""
        return self._drop(keys=[due_key(tag), DUE_ORIGINS], args=[delivery_id, tag], client=client)


def claimed_records(reply: Any) -> list[tuple[str, dict[bytes, bytes]]]:
    """``claim_records``' reply as (delivery id, record) pairs; a record that expired is an
    empty dict."""
    pairs = []
    for index in range(0, len(reply), 2):
        raw_id, flat = reply[index], reply[index + 1]
        record = {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}
        pairs.append((raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id), record))
    return pairs


def scripts(conn: Any) -> Scripts:
    """The :class:`Scripts` of ``conn``, registered on first use (as rq's ``scripts.py``);
    on a synchronous connection also loaded into Redis then (pipelines run them by
    ``EVALSHA``: ``runtime.scripts``). An asyncio connection's are loaded by its user
    (``await runtime.scripts.aload(conn, found.all)``). Kept on the connection object, so
    they go with it (a weak-keyed map would keep it alive: the scripts refer to it)."""
    found: Scripts | None = getattr(conn, "_netpulse_delivery_scripts", None)
    if found is None:
        found = Scripts(conn)
        if not _is_async(conn):
            load_scripts(conn, found.all)
        conn._netpulse_delivery_scripts = found
    return found


def _is_async(conn: Any) -> bool:
    return type(conn).__module__.startswith("redis.asyncio")
