"""The webhook delivery service's heartbeat: is any service delivering events now?

``GET /health/ready`` must tell whether an event recorded now would be delivered, and the
service has no other trace in Redis while the outbox is empty.

Key: ``netpulse:wh:services``, a sorted set of service instance id -> Redis server time of the
instance's last beat. Chosen over one ``...:alive`` key per instance with a TTL because:

- a reader asks one ``ZCOUNT`` instead of a ``SCAN`` over the whole keyspace, which walks every
  job and delivery key and costs more the busier the system is;
- both beats and reads use Redis' own clock (``TIME`` inside the scripts), so services and
  controllers on hosts whose clocks disagree still agree on who is alive;
- nothing stale stays: each beat trims the entries older than the TTL, and the set itself
  expires when no service has beaten for a TTL.

A stopping service removes its entry, so readiness drops at once, not a TTL later. The beat
lives through Redis outages: it logs once when Redis goes away and once when it is back, and
keeps trying every interval meanwhile (a lost set is rebuilt by the next beat).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

from redis import Redis
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS, OutageLog
from netpulse.runtime.tasks import wait_or_timeout

log = logging.getLogger(__name__)

SERVICES = "netpulse:wh:services"
#: A service that has not beaten for this long is taken for gone.
HEARTBEAT_TTL = 10
HEARTBEAT_INTERVAL = 2.0

#: KEYS: services. ARGV: instance, ttl. Beat now (server time) and trim the stale entries.
_BEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('EXPIRE', KEYS[1], math.ceil(ttl))
return 1
"""

#: KEYS: services. ARGV: ttl. How many services beat within the last ttl seconds.
_ALIVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
return redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[1]), '+inf')
"""


def new_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def live_services(conn: Redis, ttl: float = HEARTBEAT_TTL) -> int:
    """How many delivery services have beaten within ``ttl`` seconds (Redis errors raise)."""
    return int(conn.register_script(_ALIVE)(keys=[SERVICES], args=[ttl]))


class ServiceHeartbeat:
    """Beats for one delivery service process until it stops, then leaves."""

    def __init__(
        self,
        redis: aioredis.Redis,
        instance: str | None = None,
        interval: float = HEARTBEAT_INTERVAL,
        ttl: float = HEARTBEAT_TTL,
    ) -> None:
        self.redis = redis
        self.instance = instance or new_instance_id()
        self.interval = interval
        self.ttl = ttl
        self._beat = redis.register_script(_BEAT)
        self._outage = OutageLog(log, f"webhook delivery service {self.instance}: heartbeat")
        self._failing = False

    async def beat(self) -> bool:
        """One beat; False (logged once until a beat succeeds again) when Redis refused it."""
        try:
            await self._beat(keys=[SERVICES], args=[self.instance, self.ttl])
        except REDIS_OUTAGE_ERRORS as exc:
            self._outage.failed(exc)
            return False
        except RedisError:
            # Not an outage (a refused script, a permission): a fault to fix, said once.
            if not self._failing:
                log.exception(
                    "webhook delivery service %s: heartbeat refused by Redis; readiness will "
                    "report webhook_delivery missing until it is accepted",
                    self.instance,
                )
            self._failing = True
            return False
        self._outage.recovered()
        if self._failing:
            log.warning("webhook delivery service %s: heartbeat accepted again", self.instance)
        self._failing = False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Beat every ``interval`` until ``stop`` is set (or the task is cancelled); then
        remove this instance's entry.

        The stop event, not cancellation alone, ends the loop: redis-py can swallow a
        cancellation that arrives during a beat (``netpulse.runtime.tasks``).
        """
        log.info("webhook delivery service %s: beating on %s", self.instance, SERVICES)
        try:
            while not stop.is_set():
                await self.beat()
                await wait_or_timeout(stop, self.interval)
        finally:
            await self.leave()

    async def leave(self) -> None:
        try:
            await asyncio.wait_for(self.redis.zrem(SERVICES, self.instance), 2)
        except (RedisError, TimeoutError) as exc:
            log.warning(
                "webhook delivery service %s: could not remove its heartbeat (%s); it expires "
                "within %g s",
                self.instance,
                exc,
                self.ttl,
            )
