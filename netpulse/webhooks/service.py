"""The webhook delivery service: takes due deliveries from Redis and runs their callers.

Runs in its own process (``netpulse worker webhooks``; ``netpulse up`` starts one), never in a
device worker. Many deliveries are in flight at once on one event loop, through one HTTP client
that reuses connections. Deliveries are leased, not popped: if this process dies, what it held
becomes due again after the lease, so delivery is at-least-once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx
from redis import asyncio as aioredis
from redis.exceptions import RedisError

from netpulse import __version__
from netpulse.config import Settings
from netpulse.models.request import ExecutionRequest
from netpulse.models.webhook import WebhookConfig
from netpulse.plugins.webhooks import (
    AttemptOutcome,
    DeliveryContext,
    GiveUp,
    RetryDelivery,
)
from netpulse.plugins.webhooks import registry as callers
from netpulse.webhooks import retry, ssrf, store
from netpulse.webhooks.metrics import LATENCY_BUCKETS
from netpulse.webhooks.origins import OriginGate, origin_of

log = logging.getLogger(__name__)

USER_AGENT = f"NetPulse-Webhook/{__version__}"
#: How long the loop waits when every claimed delivery is for a busy destination.
BUSY_PAUSE = 0.25
#: How many deliveries the loop claims while every recent one was for a busy destination.
SMALL_CLAIM = 8


@dataclass
class JobSnapshot:
    """The job as it was when its event was recorded (what `call(job=...)` receives)."""

    id: str
    status: str
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    meta: dict[str, Any]


class DeliveryService:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        cfg = settings.webhooks
        self.policy = ssrf.DestinationPolicy.from_lists(
            allow=cfg.allow_cidrs, deny=cfg.deny_cidrs, deny_private=cfg.deny_private
        )
        self.gate = OriginGate(
            cfg.max_in_flight_per_origin,
            cfg.origin_failure_threshold,
            cfg.origin_backoff_seconds,
            max_tasks=max(cfg.max_in_flight // 2, 1),
        )
        self.secrets = [
            s.get_secret_value()
            for s in ([cfg.signing_secret] if cfg.signing_secret else [])
            + list(cfg.previous_signing_secrets)
        ]
        self.http = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=cfg.max_in_flight, max_keepalive_connections=cfg.max_in_flight
            ),
            follow_redirects=False,
            trust_env=False,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        #: origin tag (from delivery ids) -> origin, learned from the records read
        self._origins: dict[str, str] = {}
        self._claim_size = settings.webhooks.max_in_flight
        self._claim = redis.register_script(store.CLAIM_SCRIPT)
        self._rng = random.Random()
        self._last_prune = 0.0

    # -- the loop -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        log.info("webhook delivery service started (%s)", USER_AGENT)
        try:
            while not stop.is_set():
                try:
                    claimed = await self._claim_and_start()
                    if claimed == 0:
                        await self._sleep_until_due(stop)
                    self._prune_if_due()
                except RedisError:
                    # Redis restarting or unreachable: nothing is lost (deliveries live there).
                    log.exception("Redis error in the delivery loop; retrying in 1 s")
                    await asyncio.sleep(1)
        finally:
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=10)
            await self.http.aclose()
            log.info("webhook delivery service stopped")

    async def _claim_and_start(self) -> int:
        """Lease due deliveries and start them; those for a busy or backed-off destination
        (known from the id's origin tag) go back to Redis without being read."""
        free = self.settings.webhooks.max_in_flight - len(self._tasks)
        if free <= 0:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED, timeout=1)
            return 1
        size = min(free, self._claim_size)
        ids = await self._claim(
            keys=[store.DUE], args=[time.time(), self.settings.webhooks.lease_seconds, size]
        )
        now = time.time()
        deferred: dict[str, float] = {}
        for raw_id in ids:
            delivery_id = raw_id.decode()
            origin = self._origins.get(store.tag_of(delivery_id) or "")
            wait = self.gate.deferral(origin, now) if origin else None
            if wait is not None:
                deferred[delivery_id] = now + wait
                continue
            if origin:
                self.gate.reserve(origin)
            task = asyncio.create_task(self._deliver(delivery_id, origin))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._claim_size = self.settings.webhooks.max_in_flight
        if deferred:
            await self.redis.zadd(store.DUE, deferred)
            if len(deferred) == len(ids) and self._tasks:
                # Everything claimed waits for busy destinations: claim little until one of
                # them progresses, instead of cycling the whole backlog through Redis.
                self._claim_size = SMALL_CLAIM
                await asyncio.wait(
                    self._tasks, return_when=asyncio.FIRST_COMPLETED, timeout=BUSY_PAUSE
                )
        return len(ids)

    async def _sleep_until_due(self, stop: asyncio.Event) -> None:
        first = await self.redis.zrange(store.DUE, 0, 0, withscores=True)
        delay = 1.0
        if first:
            delay = min(max(first[0][1] - time.time(), 0.0), 1.0)
        if delay <= 0:
            await asyncio.sleep(0.005)  # due items exist but were all claimed: yield
            return
        woke = await self.redis.blpop([store.WAKE], timeout=max(delay, 0.01))
        if woke:
            await self.redis.delete(store.WAKE)

    def _prune_if_due(self) -> None:
        now = time.time()
        if now - self._last_prune < 60:
            return
        self._last_prune = now
        cutoff = now - self.settings.webhooks.retention_seconds
        task = asyncio.create_task(self._prune(cutoff))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _prune(self, cutoff: float) -> None:
        try:
            await self.redis.zremrangebyscore(store.ALL, "-inf", cutoff)
        except Exception:
            log.exception("pruning the delivery index failed")

    # -- one attempt --------------------------------------------------------------------------

    async def _deliver(self, delivery_id: str, reserved_origin: str | None = None) -> None:
        try:
            await self._attempt(delivery_id, reserved_origin)
        except Exception:
            # The lease brings the delivery back; nothing is lost, but say so loudly.
            log.exception("delivery %s: unexpected error; it returns after its lease", delivery_id)

    async def _attempt(self, delivery_id: str, reserved_origin: str | None = None) -> None:
        key = store.delivery_key(delivery_id)
        try:
            raw = await self.redis.hgetall(key)
        except BaseException:
            if reserved_origin:
                self.gate.state(reserved_origin).tasks -= 1
            raise
        if not raw or raw.get(b"state") != store.PENDING.encode():
            if reserved_origin:
                self.gate.state(reserved_origin).tasks -= 1
            await self.redis.zrem(store.DUE, delivery_id)
            return
        delivery = store.Delivery.from_hash(raw)
        origin = reserved_origin or origin_of(delivery.url)
        if reserved_origin is None:
            self._origins[store.tag_of(delivery_id) or ""] = origin
            wait = self.gate.deferral(origin)
            if wait is not None:
                await self.redis.zadd(store.DUE, {delivery_id: time.time() + wait})
                return
        asked = time.monotonic()
        async with self.gate.slot(origin, reserved=reserved_origin is not None):
            if time.monotonic() - asked > 1.0:
                # Waiting for the slot took a while: renew the lease before the attempt.
                lease_end = time.time() + self.settings.webhooks.lease_seconds
                await self.redis.zadd(store.DUE, {delivery_id: lease_end}, xx=True)
            started = time.monotonic()
            outcome = AttemptOutcome("retry", reason="delivery interrupted")
            try:
                outcome = await self._run_caller(delivery)
            finally:
                latency = time.monotonic() - started
                self.gate.record(
                    origin,
                    succeeded=outcome.verdict == "success",
                    counts_as_failure=not outcome.refused,
                )
        await self._record(delivery, outcome, latency)

    async def _run_caller(self, delivery: store.Delivery) -> AttemptOutcome:
        try:
            webhook = WebhookConfig.model_validate(delivery.webhook)
            caller = callers.get(delivery.caller)(webhook)
        except Exception as exc:
            return AttemptOutcome("give_up", reason=f"webhook cannot be delivered: {exc}")
        event = json.loads(delivery.body)
        secrets = list(self.secrets)
        if webhook.secret is not None:
            secrets = [webhook.secret.get_secret_value()]
        context = DeliveryContext(
            webhook_id=delivery.webhook_id,
            attempt=delivery.attempts + 1,
            body=delivery.body,
            signing_secrets=secrets,
            policy=self.policy,
            user_agent=USER_AGENT,
            http=self.http,
        )
        try:
            req: Any = ExecutionRequest.model_validate({**delivery.req, "webhook": webhook})
        except Exception:
            req = {**delivery.req, "webhook": webhook}
        job = JobSnapshot(**{k: delivery.job.get(k) for k in JobSnapshot.__dataclass_fields__})
        try:
            outcome = await asyncio.wait_for(
                caller.acall(
                    req=req,
                    job=job,
                    result=event.get("result"),
                    event=event,
                    body=delivery.body,
                    webhook_id=delivery.webhook_id,
                    attempt=context.attempt,
                    context=context,
                ),
                timeout=webhook.timeout + 5,
            )
        except RetryDelivery as exc:
            return AttemptOutcome("retry", reason=str(exc), retry_after=exc.after)
        except GiveUp as exc:
            return AttemptOutcome("give_up", reason=str(exc))
        except TimeoutError:
            return AttemptOutcome("retry", reason=f"caller timed out after {webhook.timeout:g} s")
        except Exception as exc:
            log.warning(
                "delivery %s: caller %s raised", delivery.id, delivery.caller, exc_info=True
            )
            return AttemptOutcome("retry", reason=f"caller error: {type(exc).__name__}: {exc}")
        return outcome if outcome is not None else AttemptOutcome("success")

    def _policy_for(self, webhook: dict[str, Any]) -> retry.RetryPolicy:
        cfg = self.settings.webhooks
        intervals = webhook.get("retry_intervals") or cfg.retry_intervals
        schedule = tuple(intervals) if intervals else retry.DEFAULT_SCHEDULE
        max_retries = webhook.get("max_retries")
        if max_retries is None:
            max_retries = len(schedule)
        return retry.RetryPolicy(intervals=schedule, max_retries=max_retries, jitter=cfg.jitter)

    async def _record(
        self, delivery: store.Delivery, outcome: AttemptOutcome, latency: float
    ) -> None:
        now = time.time()
        attempt_no = delivery.attempts + 1
        state = store.PENDING
        next_at: float | None = None
        exhausted = False
        if outcome.verdict == "success":
            state = store.SUCCEEDED
        elif outcome.verdict == "give_up":
            state = store.FAILED
        else:
            policy = self._policy_for(delivery.webhook)
            verdict = retry.Verdict("retry", outcome.reason, outcome.retry_after)
            delay = retry.next_attempt_delay(policy, delivery.retries_done, verdict, self._rng)
            if delay is None:
                state, exhausted = store.FAILED, True
            else:
                next_at = now + delay
        attempt = {
            "attempt": attempt_no,
            "at": now,
            "url": delivery.url,
            "status_code": outcome.status_code,
            "latency_ms": round(latency * 1000, 3),
            "verdict": outcome.verdict,
            "error": None if outcome.verdict == "success" else outcome.reason,
            "remote_ip": outcome.remote_ip,
            "response_body": outcome.response_body,
            "next_attempt_at": next_at,
        }
        retention = self.settings.webhooks.retention_seconds
        key = store.delivery_key(delivery.id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(store.attempts_key(delivery.id), json.dumps(attempt))
        pipe.expire(store.attempts_key(delivery.id), retention)
        fields: dict[str, Any] = {
            "state": state,
            "attempts": attempt_no,
            "updated_at": now,
            "last_status_code": outcome.status_code or "",
            "last_error": "" if outcome.verdict == "success" else outcome.reason,
            "next_at": next_at if next_at is not None else "",
        }
        if state == store.PENDING:
            fields["retries_done"] = delivery.retries_done + 1
            pipe.zadd(store.DUE, {delivery.id: next_at})
        else:
            pipe.zrem(store.DUE, delivery.id)
        pipe.hset(key, mapping=fields)
        pipe.hincrby(store.STATS, "attempts", 1)
        pipe.hincrby(store.STATS, f"attempts_{outcome.verdict}", 1)
        if exhausted:
            pipe.hincrby(store.STATS, "exhausted", 1)
        if outcome.refused:
            pipe.hincrby(store.STATS, "refused", 1)
        pipe.hincrbyfloat(store.STATS, "latency_sum", latency)
        bucket = next((b for b in LATENCY_BUCKETS if latency <= b), "inf")
        pipe.hincrby(store.STATS, f"latency_le_{bucket}", 1)
        await pipe.execute()
        if outcome.verdict != "success":
            log.warning(
                "webhook %s for job %s to %s: attempt %d failed (%s)%s",
                delivery.id,
                delivery.job_id,
                delivery.url,
                attempt_no,
                outcome.reason,
                f"; next attempt in {next_at - now:.1f} s" if next_at else "; giving up",
            )


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the delivery service until ``stop`` is set (or forever)."""
    # httpx logs every request URL (with its query string) at INFO; the delivery log is ours.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Every delivery in flight may hold a connection: size the pool for that and make a busy
    # pool wait instead of raising.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=settings.webhooks.max_in_flight + 8, timeout=None
    )
    redis = aioredis.Redis(connection_pool=pool)
    try:
        await DeliveryService(redis, settings).run(stop or asyncio.Event())
    finally:
        await redis.aclose()
