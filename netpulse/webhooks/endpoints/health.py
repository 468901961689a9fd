"""An endpoint's health: failing, disabled and held events, recovery, and its send rate.

All of it lives in Redis and changes in Lua scripts, so every delivery process (on any
machine) sees and changes the same state atomically:

- each attempt's outcome updates ``ep:<endpoint>`` (:data:`OUTCOME_SCRIPT`): the first
  failure since the last success starts ``failing_since``; a delivery that failed for good
  (retries exhausted or given up) counts in ``failed_deliveries``. When every attempt has
  failed for ``webhooks.endpoint_disable_after_seconds``, or the last
  ``webhooks.endpoint_disable_after_failed_deliveries`` deliveries failed, the endpoint joins
  the ``disabled`` set and the script answers ``disabled``; the first success after a failed
  delivery answers ``recovered``. The caller then records the ``endpoint.*`` notice;
- a delivery to a disabled endpoint is held: by the record script when the event is new, by
  :data:`HOLD_SCRIPT` when the delivery service finds a pending one (a retry);
- enabling again either releases the held deliveries (due now, current config, a fresh retry
  budget) or marks them failed (:data:`RELEASE_SCRIPT`), in batches;
- ``max_per_second`` is a GCRA over ``rate:<endpoint>`` (:data:`RESERVE_SCRIPT`): each attempt
  reserves the next free slot, on the Redis server's clock, whichever process sends it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from redis import Redis

from netpulse.runtime.scripts import PipelinedScript
from netpulse.runtime.scripts import load as load_scripts
from netpulse.webhooks import store
from netpulse.webhooks.endpoints.directory import bump_version


class Outcome(StrEnum):
    SUCCESS = "success"
    #: an attempt failed; the delivery will be retried
    FAILURE = "failure"
    #: the delivery failed for good (retries exhausted, or given up)
    FAILED_DELIVERY = "failed_delivery"


#: KEYS: endpoint's health, disabled set, endpoints version, failing set. ARGV: endpoint id,
#: outcome, now, disable after seconds, disable after failed deliveries. Returns the notice
#: to send ('disabled', 'recovered' or ''). Successes are reported only for endpoints in the
#: failing set (a healthy endpoint's success changes nothing), failures always.
OUTCOME_SCRIPT = """
local now = tonumber(ARGV[3])
if ARGV[2] == 'success' then
  local failing = redis.call('HGET', KEYS[1], 'failing')
  redis.call('HSET', KEYS[1], 'last_success_at', ARGV[3], 'failed_deliveries', 0)
  redis.call('HDEL', KEYS[1], 'failing_since', 'failing')
  redis.call('SREM', KEYS[4], ARGV[1])
  if failing then return 'recovered' end
  return ''
end
redis.call('HSETNX', KEYS[1], 'failing_since', ARGV[3])
redis.call('HSET', KEYS[1], 'last_failure_at', ARGV[3])
redis.call('SADD', KEYS[4], ARGV[1])
local failed = tonumber(redis.call('HGET', KEYS[1], 'failed_deliveries') or '0')
if ARGV[2] == 'failed_delivery' then
  failed = redis.call('HINCRBY', KEYS[1], 'failed_deliveries', 1)
  redis.call('HSET', KEYS[1], 'failing', 1)
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return '' end
local since = tonumber(redis.call('HGET', KEYS[1], 'failing_since'))
local reason = nil
if failed >= tonumber(ARGV[5]) then
  reason = 'its last ' .. failed .. ' deliveries failed'
elseif now - since >= tonumber(ARGV[4]) then
  reason = 'every attempt failed for ' .. math.floor(now - since) .. ' s'
end
if not reason then return '' end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'failing', 1, 'disabled_at', ARGV[3], 'disabled_reason', reason)
redis.call('INCR', KEYS[3])
return 'disabled'
"""

#: Hold a pending delivery of a disabled endpoint instead of attempting it.
#: KEYS: delivery, origin's due set, origin index, held set, health. ARGV: delivery id,
#: origin tag, now, retention. Returns 1 if held.
HOLD_SCRIPT = (
    store._HELPERS
    + """
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'held', 'next_at', '')
redis.call('ZREM', KEYS[2], ARGV[1])
reindex(KEYS[2], KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('EXPIRE', KEYS[4], ARGV[4])
redis.call('HINCRBY', KEYS[5], 'held', 1)
return 1
"""
)

#: Let a held delivery go: due now with the endpoint's current config (ARGV[4] 'send'), or
#: failed with a reason ('fail'). KEYS: delivery, origin's due set, origin index, held set,
#: health, wake. ARGV: delivery id, origin tag, now, action, reason, then field/value pairs.
RELEASE_SCRIPT = (
    store._HELPERS
    + """
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('HGET', KEYS[1], 'state') ~= 'held' then return 0 end
if redis.call('HINCRBY', KEYS[5], 'held', -1) < 0 then redis.call('HSET', KEYS[5], 'held', 0) end
if ARGV[4] == 'fail' then
  redis.call('HSET', KEYS[1], 'state', 'failed', 'last_error', ARGV[5], 'updated_at', ARGV[3])
  return 1
end
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], 'state', 'pending', 'retries_done', 0, 'next_at', ARGV[3],
  'rate_slot', '', unpack(fields))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
index_at_most(KEYS[3], ARGV[2], ARGV[3])
redis.call('LPUSH', KEYS[6], ARGV[1])
redis.call('LTRIM', KEYS[6], 0, 999)
return 1
"""
)

#: Reserve the next send slot of a rate-limited endpoint (GCRA, no burst): returns the
#: seconds from now (Redis' clock) until the slot. KEYS: rate key. ARGV: interval seconds.
RESERVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
local nxt = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.6f', nxt), 'PX', math.ceil((nxt - now) * 1000) + 1000)
return string.format('%.6f', slot - now)
"""


@dataclass
class Health:
    """An endpoint's health as the API shows it."""

    enabled: bool
    disabled_at: float | None
    disabled_reason: str | None
    failing_since: float | None
    failed_deliveries: int
    held: int
    last_success_at: float | None
    last_failure_at: float | None

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes], disabled: bool) -> Health:
        def number(name: str) -> float | None:
            value = raw.get(name.encode())
            return float(value) if value not in (None, b"") else None

        reason = raw.get(b"disabled_reason")
        return cls(
            enabled=not disabled,
            disabled_at=number("disabled_at") if disabled else None,
            disabled_reason=reason.decode() if (disabled and reason) else None,
            failing_since=number("failing_since"),
            failed_deliveries=int(number("failed_deliveries") or 0),
            held=max(int(number("held") or 0), 0),
            last_success_at=number("last_success_at"),
            last_failure_at=number("last_failure_at"),
        )


def read(conn: Redis, endpoint_ids: list[str]) -> dict[str, Health]:
    pipe = conn.pipeline(transaction=False)
    pipe.smembers(store.DISABLED)
    for endpoint_id in endpoint_ids:
        pipe.hgetall(store.endpoint_health_key(endpoint_id))
    disabled, *states = pipe.execute()
    off = set(store.members(disabled))
    return {
        endpoint_id: Health.from_redis(raw, endpoint_id in off)
        for endpoint_id, raw in zip(endpoint_ids, states, strict=True)
    }


class Scripts:
    """The endpoint scripts of one connection (sync or asyncio), registered once."""

    def __init__(self, conn: Any) -> None:
        self._outcome = PipelinedScript(conn, OUTCOME_SCRIPT)
        self._hold = PipelinedScript(conn, HOLD_SCRIPT)
        self._release = PipelinedScript(conn, RELEASE_SCRIPT)
        self._reserve = PipelinedScript(conn, RESERVE_SCRIPT)
        self.all = [self._outcome, self._hold, self._release, self._reserve]

    def outcome(
        self,
        endpoint_id: str,
        outcome: Outcome,
        now: float,
        disable_after_seconds: float,
        disable_after_failed: int,
        client: Any = None,
    ) -> Any:
        return self._outcome(
            keys=[
                store.endpoint_health_key(endpoint_id),
                store.DISABLED,
                store.ENDPOINTS_VERSION,
                store.FAILING,
            ],
            args=[endpoint_id, str(outcome), now, disable_after_seconds, disable_after_failed],
            client=client,
        )

    def hold(
        self, delivery_id: str, tag: str, endpoint_id: str, retention: int, client: Any = None
    ) -> Any:
        return self._hold(
            keys=[
                store.delivery_key(delivery_id),
                store.due_key(tag),
                store.DUE_ORIGINS,
                store.held_key(endpoint_id),
                store.endpoint_health_key(endpoint_id),
            ],
            args=[delivery_id, tag, time.time(), retention],
            client=client,
        )

    def release(
        self,
        delivery_id: str,
        endpoint_id: str,
        send: bool,
        reason: str = "",
        fields: dict[str, Any] | None = None,
        client: Any = None,
    ) -> Any:
        tag = store.filing_tag(delivery_id)
        pairs: list[Any] = []
        for name, value in (fields or {}).items():
            pairs.extend((name, value))
        return self._release(
            keys=[
                store.delivery_key(delivery_id),
                store.due_key(tag),
                store.DUE_ORIGINS,
                store.held_key(endpoint_id),
                store.endpoint_health_key(endpoint_id),
                store.WAKE,
            ],
            args=[delivery_id, tag, time.time(), "send" if send else "fail", reason, *pairs],
            client=client,
        )

    def reserve(self, endpoint_id: str, per_second: float, client: Any = None) -> Any:
        return self._reserve(
            keys=[store.rate_key(endpoint_id)], args=[1.0 / per_second], client=client
        )


def scripts(conn: Any) -> Scripts:
    """The :class:`Scripts` of ``conn``, registered on first use (and loaded, on a
    synchronous connection; see ``store.scripts``), kept on the connection object."""
    found: Scripts | None = getattr(conn, "_netpulse_health_scripts", None)
    if found is None:
        found = Scripts(conn)
        if not type(conn).__module__.startswith("redis.asyncio"):
            load_scripts(conn, found.all)
        conn._netpulse_health_scripts = found
    return found


def disable(conn: Redis, endpoint_id: str, reason: str) -> None:
    """Disable by hand: new events are held from now on."""
    pipe = conn.pipeline(transaction=True)
    pipe.sadd(store.DISABLED, endpoint_id)
    pipe.hset(
        store.endpoint_health_key(endpoint_id),
        mapping={"disabled_at": time.time(), "disabled_reason": reason},
    )
    bump_version(pipe)
    pipe.execute()


def enable(conn: Redis, endpoint_id: str, replay_held: bool, webhook_json: str, url: str) -> int:
    """Enable again; the held deliveries are sent now (with the endpoint's current config:
    a fixed URL or secret applies to them) or marked failed. Returns how many were held.

    The failure counters start again, so a stretch of failure before the fix cannot disable
    it at once; ``failing`` stays, so its first success is announced as ``recovered``.
    """
    health = store.endpoint_health_key(endpoint_id)
    pipe = conn.pipeline(transaction=True)
    pipe.srem(store.DISABLED, endpoint_id)
    pipe.hdel(health, "failing_since", "disabled_at", "disabled_reason")
    pipe.hset(health, "failed_deliveries", 0)
    bump_version(pipe)
    pipe.execute()
    return let_held_go(
        conn,
        endpoint_id,
        send=replay_held,
        reason="held while its endpoint was disabled; not replayed when it was enabled again",
        fields={"webhook": webhook_json, "url": url},
    )


def let_held_go(
    conn: Redis,
    endpoint_id: str,
    send: bool,
    reason: str,
    fields: dict[str, Any] | None = None,
    batch: int = 500,
) -> int:
    """Release (``send``) or fail every held delivery of the endpoint, in batches."""
    box = scripts(conn)
    done = 0
    while True:
        ids = store.members(conn.zrange(store.held_key(endpoint_id), 0, batch - 1))
        if not ids:
            return done
        pipe = conn.pipeline(transaction=False)
        for delivery_id in ids:
            box.release(delivery_id, endpoint_id, send, reason, fields, client=pipe)
        done += sum(int(r) for r in pipe.execute())


def forget(conn: Redis, endpoint_id: str) -> None:
    """An endpoint was deleted: its held deliveries fail (they stay in the log, and each
    can still be redelivered), its state goes."""
    let_held_go(conn, endpoint_id, send=False, reason="its endpoint was deleted")
    pipe = conn.pipeline(transaction=True)
    pipe.srem(store.DISABLED, endpoint_id)
    pipe.srem(store.FAILING, endpoint_id)
    pipe.delete(
        store.endpoint_health_key(endpoint_id),
        store.held_key(endpoint_id),
        store.rate_key(endpoint_id),
    )
    bump_version(pipe)
    pipe.execute()


def notice_payload(
    notice: str, endpoint_id: str, url: str, health: Health, reason: str | None
) -> dict[str, Any]:
    """The payload of ``endpoint.disabled`` / ``endpoint.recovered``."""

    def iso(ts: float | None) -> str | None:
        return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None

    now = time.time()
    return {
        "id": f"{notice}.{endpoint_id}.{int(now * 1000)}",
        "event_type": f"endpoint.{notice}",
        "final": True,
        "timestamp": iso(now),
        "endpoint_id": endpoint_id,
        "url": url,
        "reason": reason,
        "health": {
            "failing_since": iso(health.failing_since),
            "failed_deliveries": health.failed_deliveries,
            "held": health.held,
        },
    }
