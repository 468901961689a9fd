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
from typing import Any

from pydantic import ValidationError
from redis import asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from netpulse import __version__
from netpulse.config import Settings
from netpulse.models.request import STORED, ExecutionRequest
from netpulse.models.webhook import WebhookConfig
from netpulse.net.client import GuardedSender, make_client, short_reason
from netpulse.net.ssrf import DestinationPolicy
from netpulse.registry import PluginError
from netpulse.runtime.outage import OutageLog, is_outage
from netpulse.runtime.scripts import aload as aload_scripts
from netpulse.runtime.tasks import end_tasks, wait_or_timeout
from netpulse.security.sealing import SealError, open_webhook_dict
from netpulse.webhooks import store
from netpulse.webhooks.callers import (
    AttemptOutcome,
    DeliveryContext,
    GiveUp,
    RetryDelivery,
    Verdict,
)
from netpulse.webhooks.callers import registry as callers
from netpulse.webhooks.delivery import retry
from netpulse.webhooks.delivery.heartbeat import ServiceHeartbeat
from netpulse.webhooks.delivery.journal import AttemptRecord, EndpointPolicy, OutcomeJournal
from netpulse.webhooks.delivery.notices import EndpointNotices
from netpulse.webhooks.delivery.origins import OriginGate
from netpulse.webhooks.endpoints import health
from netpulse.webhooks.payload import PayloadTemplateError, render_body

log = logging.getLogger(__name__)

USER_AGENT = f"NetPulse-Webhook/{__version__}"


class DeliveryService:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        cfg = settings.webhooks
        self.policy = DestinationPolicy.from_lists(
            allow=cfg.allow_cidrs, deny=cfg.deny_cidrs, deny_private=cfg.deny_private
        )
        self.gate = OriginGate(
            cfg.max_in_flight_per_origin,
            cfg.origin_failure_threshold,
            cfg.origin_backoff_seconds,
            # Deliveries one origin may hold (in flight or waiting for one of its slots): a
            # few batches' worth, and a small share of all slots, so slow origins with
            # backlogs cannot hold every slot between them.
            max_tasks=max(min(cfg.max_in_flight // 4, cfg.max_in_flight_per_origin * 8), 1),
        )
        self.secrets = [
            s.get_secret_value()
            for s in ([cfg.signing_secret] if cfg.signing_secret else [])
            + list(cfg.previous_signing_secrets)
        ]
        self.signing_keys = [k.get_secret_value() for k in cfg.asymmetric_signing_keys]
        # Every caller sends through this client: the policy is applied to each connection.
        self.http = make_client(self.policy, cfg.max_in_flight)
        # The built-in caller's path: bare aiohttp on the same guard.
        self.sender = GuardedSender(self.policy, cfg.max_in_flight)
        self.notices = EndpointNotices(settings)
        self.journal = OutcomeJournal(
            redis,
            retention=cfg.retention_seconds,
            endpoints=EndpointPolicy(
                disable_after_seconds=cfg.endpoint_disable_after_seconds,
                disable_after_failed=cfg.endpoint_disable_after_failed_deliveries,
                notify=self.notices.send,
                is_failing=lambda endpoint_id: endpoint_id in self._failing,
            ),
        )
        self.health = health.scripts(redis)
        #: endpoints disabled when this process last claimed (their deliveries are held)
        self._disabled: set[str] = set()
        #: origins with new events since the last claim (from the wake list)
        self._woken: set[str] = set()
        #: endpoints failing when this process last claimed (their successes are reported)
        self._failing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: Set when there may be something to claim: a new event (wake list), a destination
        #: with room again, or a stop request.
        self._kick = asyncio.Event()
        self.scripts = store.scripts(redis)
        #: deliveries this process has claimed and not finished: id -> origin tag
        self._held: dict[str, str] = {}
        #: Global slots only origins holding no delivery in this process may take, so that
        #: a few slow origins with backlogs cannot fill every slot (a new origin always
        #: finds room).
        self._reserve = cfg.max_in_flight // 8
        self._rng = random.Random()
        self._last_prune = 0.0
        #: One line when Redis goes away and one when it is back, whichever loop sees it.
        self._outage = OutageLog(log, "webhook delivery service")

    # -- the loop -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; then finish the attempts in flight, write their
        outcomes and return. Redis may be away at any point, start included."""
        if not await self._load_scripts(stop) or not await self._migrate_legacy_due(stop):
            log.info("webhook delivery service stopped before Redis answered")
            return
        log.info("webhook delivery service started (%s)", USER_AGENT)
        #: Set once the last attempts have ended: their leases are kept until then.
        leases_done = asyncio.Event()
        helpers = [
            asyncio.create_task(self._listen_for_wakes(stop), name="wake listener"),
            asyncio.create_task(self._kick_on(stop), name="stop kick"),
            asyncio.create_task(self._keep_leases(leases_done), name="lease keeper"),
            # for /health/ready
            asyncio.create_task(ServiceHeartbeat(self.redis).run(stop), name="heartbeat"),
        ]
        journal = asyncio.create_task(self.journal.run())
        try:
            while not stop.is_set():
                try:
                    self._kick.clear()
                    pause = await self._claim_and_start()
                    if pause > 0:
                        await wait_or_timeout(self._kick, pause)
                    self._prune_if_due()
                    self._outage.recovered()
                except NoScriptError:
                    await self._load_scripts(stop)  # Redis restarted and forgot them
                except RedisError as exc:
                    # Redis restarting or unreachable: nothing is lost (deliveries live there).
                    self._redis_trouble("the delivery loop", exc)
                    await wait_or_timeout(stop, 1)
        finally:
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=10)
            leases_done.set()
            # They watch ``stop`` too: a cancellation redis-py swallows cannot hold the stop.
            await end_tasks(helpers, "webhook delivery service")
            # The outcomes of the last attempts are written before the process ends.
            self.journal.close()
            await asyncio.wait([journal], timeout=10)
            await end_tasks([journal], "webhook delivery service")
            try:
                await asyncio.wait_for(self.journal.flush_all(), 15)
            except TimeoutError:
                log.error(
                    "Redis did not answer within 15 s; %d attempt outcome(s) not written "
                    "(those deliveries are attempted again after their lease)",
                    self.journal.backlog,
                )
            await self.http.aclose()
            await self.sender.aclose()
            await self.notices.close()
            log.info("webhook delivery service stopped")

    async def _load_scripts(self, stop: asyncio.Event) -> bool:
        """Load the scripts the pipelines run by ``EVALSHA`` (``runtime.scripts``): at start,
        and again when Redis says it forgot them (it restarted). False if ``stop`` was set
        before Redis answered."""
        while not stop.is_set():
            try:
                await aload_scripts(self.redis, [*self.scripts.all, *self.health.all])
                self._outage.recovered()
                return True
            except RedisError as exc:
                self._redis_trouble("loading the delivery scripts", exc)
                await wait_or_timeout(stop, 1)
        return False

    async def _migrate_legacy_due(self, stop: asyncio.Event) -> bool:
        """Earlier versions kept one due set for all origins: file its deliveries per origin.
        False if ``stop`` was set before Redis answered."""
        while not stop.is_set():
            try:
                moved = await store.migrate_legacy_due(self.redis)
            except RedisError as exc:
                self._redis_trouble("filing deliveries of an earlier version", exc)
                await wait_or_timeout(stop, 1)
                continue
            if moved:
                log.info("moved %d pending deliveries to the per-origin due sets", moved)
            return True
        return False

    async def _keep_leases(self, done: asyncio.Event) -> None:
        """Renew the leases of held deliveries every third of a lease, so a delivery that
        waits long for a slot (slow receiver, long timeouts) is never claimed twice; until
        ``done`` (the last attempts of a stopping service have ended)."""
        lease = self.settings.webhooks.lease_seconds
        while not await wait_or_timeout(done, lease / 3):
            by_tag: dict[str, list[str]] = {}
            for delivery_id, tag in self._held.items():
                by_tag.setdefault(tag, []).append(delivery_id)
            if not by_tag:
                continue
            try:
                pipe = self.redis.pipeline(transaction=False)
                until = time.time() + lease
                for tag, ids in by_tag.items():
                    await self.scripts.renew(tag, until, ids, client=pipe)
                await pipe.execute()
            except RedisError as exc:
                self._redis_trouble("renewing delivery leases", exc)

    async def _kick_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._kick.set()

    async def _listen_for_wakes(self, stop: asyncio.Event) -> None:
        """Block on the wake list that every new event's delivery id is pushed to, and kick
        the loop when one of those deliveries could be claimed now.

        Its own task (and Redis connection), so the loop can wait for a wake and for room at a
        destination at once. Each wake takes the whole list: one claim serves them all. An
        event for a destination that is at its limit or backed off does not kick the loop:
        room at that destination, or the end of its back-off, does.
        """
        while not stop.is_set():
            try:
                popped = await self.redis.blpop([store.WAKE], timeout=1)
                if not popped:
                    continue
                # Kick first (the loop claims this origin while the rest is read), then
                # take every other id waiting: one claim serves them all.
                self._wake_for({store.filing_tag(store.members([popped[1]])[0])})
                pipe = self.redis.pipeline(transaction=True)
                pipe.lrange(store.WAKE, 0, -1)
                pipe.delete(store.WAKE)
                rest, _ = await pipe.execute()
                if rest:
                    self._wake_for({store.filing_tag(i.decode()) for i in rest})
            except RedisError as exc:
                self._redis_trouble("waiting for new events", exc)
                await wait_or_timeout(stop, 1)

    def _wake_for(self, tags: set[str]) -> None:
        """New events for these origins: note them for the loop's next claim, and kick it
        if one of them could be claimed now."""
        self._woken |= tags
        if any(self._could_claim(tag) for tag in tags):
            self._kick.set()

    def _redis_trouble(self, where: str, exc: RedisError) -> None:
        """An outage is said once (and its end once); any other Redis error with its trace."""
        if is_outage(exc):
            self._outage.failed(exc)
        else:
            log.exception("Redis error while %s; retrying", where)

    def _could_claim(self, tag: str) -> bool:
        """Whether a due delivery to this origin would be claimed by the next claim."""
        plan, _ = self._plan_claims(
            [tag], self.settings.webhooks.max_in_flight - len(self._tasks), time.time()
        )
        return bool(plan)

    async def _claim_and_start(self) -> float:
        """Lease due deliveries, origin by origin within each origin's budget, and start them.

        Returns how long the loop may wait (for a kick) before claiming again: 0 when it
        should claim again at once. Deliveries to a busy or backed-off destination are not
        claimed at all; they wait in Redis until it has room.
        """
        cfg = self.settings.webhooks
        free = cfg.max_in_flight - len(self._tasks)
        if free <= 0:
            return 1.0  # a finishing delivery kicks the loop
        now = time.time()
        claimed: list[tuple[str, str, dict[bytes, bytes]]] = []
        woken, self._woken = self._woken, set()
        if woken:
            # Just woken for these origins: claim from them in the same round trip that
            # reads the disabled endpoints (the next round looks at every due origin).
            plan, _ = self._plan_claims(sorted(woken), free, now)
            claimed = await self._claim(plan, now)
        if not claimed:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zrangebyscore(store.DUE_ORIGINS, "-inf", now)
            due = (await pipe.execute())[0]
            plan, retry_at = self._plan_claims(store.members(due), free, now)
            claimed = await self._claim(plan, now)
        if not claimed:
            upcoming = await self.redis.zrangebyscore(
                store.DUE_ORIGINS, f"({now}", "+inf", start=0, num=1, withscores=True
            )
            if upcoming:
                retry_at = min(retry_at, float(upcoming[0][1]))
            return max(retry_at - time.time(), 0.001)
        for tag, delivery_id, raw in claimed:
            if delivery_id in self._held:
                continue  # its lease ran out while Redis was unreachable; it is still ours
            self._held[delivery_id] = tag
            self.gate.reserve(tag)
            task = asyncio.create_task(self._deliver(tag, delivery_id, raw))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return 0.0

    async def _claim(
        self, plan: list[tuple[str, int]], now: float
    ) -> list[tuple[str, str, dict[bytes, bytes]]]:
        """Lease what ``plan`` says, with the records, and read which endpoints are disabled
        (their deliveries are held, not sent): one round trip."""
        if not plan:
            return []
        lease = self.settings.webhooks.lease_seconds
        pipe = self.redis.pipeline(transaction=False)
        for tag, budget in plan:
            await self.scripts.claim_records(tag, now, lease, budget, client=pipe)
        pipe.smembers(store.DISABLED)
        pipe.smembers(store.FAILING)
        *replies, disabled, failing = await pipe.execute()
        self._disabled = set(store.members(disabled))
        self._failing = set(store.members(failing))
        claimed: list[tuple[str, str, dict[bytes, bytes]]] = []
        for (tag, _), reply in zip(plan, replies, strict=True):
            claimed.extend((tag, i, raw) for i, raw in store.claimed_records(reply))
        return claimed

    def _plan_claims(
        self, due_tags: list[str], free: int, now: float
    ) -> tuple[list[tuple[str, int]], float]:
        """How many deliveries to claim from each origin with due deliveries, and when to
        look again if none may be claimed (the earliest end of a back-off, at most 1 s).

        Origins holding the fewest deliveries go first (then the oldest due), and origins
        that already hold some leave ``self._reserve`` slots free, so a busy origin never
        takes the slots an idle one needs.
        """
        plan: list[tuple[str, int]] = []
        retry_at = now + 1.0
        for tag in sorted(due_tags, key=lambda tag: self.gate.state(tag).tasks):
            room = free if self.gate.state(tag).tasks == 0 else free - self._reserve
            budget = min(self.gate.budget(tag, now), room)
            if budget <= 0:
                if self.gate.blocked_until(tag) > now:
                    retry_at = min(retry_at, self.gate.blocked_until(tag))
                continue
            plan.append((tag, budget))
            free -= budget
            if free <= 0:
                break
        return plan, retry_at

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

    async def _deliver(self, tag: str, delivery_id: str, raw: dict[bytes, bytes]) -> None:
        try:
            await self._attempt(tag, delivery_id, raw)
        except Exception:
            # The lease brings the delivery back; nothing is lost, but say so loudly.
            log.exception("delivery %s: unexpected error; it returns after its lease", delivery_id)
        finally:
            del self._held[delivery_id]
            at_low_water = self.gate.release(tag)
            if at_low_water or len(self._tasks) == self.settings.webhooks.max_in_flight:
                self._kick.set()

    async def _attempt(self, tag: str, delivery_id: str, raw: dict[bytes, bytes]) -> None:
        delivery = store.Delivery.from_hash(raw) if raw else None
        if delivery is None or delivery.state != store.PENDING:
            # Delivered, failed or expired since it was queued (a redelivery may requeue it).
            await self.scripts.drop(delivery_id, tag)
            return
        if delivery.endpoint_id in self._disabled:
            # Its endpoint was disabled after the event was recorded (a retry): kept, not sent.
            await self.health.hold(
                delivery_id, tag, delivery.endpoint_id, self.settings.webhooks.retention_seconds
            )
            return
        if delivery.max_per_second and not await self._rate_slot_now(tag, delivery):
            return  # due again at its reserved send slot
        async with self.gate.slot(tag):
            blocked_until = self.gate.blocked_until(tag)
            if blocked_until > time.time():
                # The destination was backed off while this one waited for a slot: no attempt
                # now; it is due again when the back-off ends.
                await self.scripts.schedule(delivery_id, tag, blocked_until, only_if_due=True)
                return
            started = time.monotonic()
            outcome = AttemptOutcome(Verdict.RETRY, reason="delivery interrupted")
            try:
                outcome = await self._run_caller(delivery)
            finally:
                latency = time.monotonic() - started
                self.gate.record(
                    tag,
                    succeeded=outcome.verdict == Verdict.SUCCESS,
                    counts_as_failure=not outcome.refused,
                )
        self._record(tag, delivery, outcome, latency)

    async def _rate_slot_now(self, tag: str, delivery: store.Delivery) -> bool:
        """Whether a rate-limited delivery may be sent now. Otherwise it has reserved the
        endpoint's next free slot (shared by every delivery process through Redis) and is
        due again then, without reserving twice."""
        now = time.time()
        if delivery.rate_slot is not None and now >= delivery.rate_slot - 0.002:
            return True
        assert delivery.max_per_second is not None
        wait = float(await self.health.reserve(delivery.endpoint_id, delivery.max_per_second))
        if wait <= 0.002:
            return True
        slot = now + wait
        pipe = self.redis.pipeline(transaction=False)
        await self.scripts.schedule(delivery.id, tag, slot, only_if_due=True, client=pipe)
        pipe.hset(store.delivery_key(delivery.id), "rate_slot", slot)
        await pipe.execute()
        # Claim it at its slot, not whenever the loop would look next (the loop may have
        # computed its next look before this delivery was due later).
        asyncio.get_running_loop().call_later(wait, self._kick.set)
        return False

    async def _run_caller(self, delivery: store.Delivery) -> AttemptOutcome:
        try:
            # Validated from its stored JSON per attempt (about 11 us): each caller gets its
            # own config, and a cache would need a deep copy, which costs more.
            # Stored with its secrets sealed: opened here, for this attempt only.
            webhook = WebhookConfig.model_validate(
                open_webhook_dict(json.loads(delivery.webhook_json))
            )
            # Checked against its driver when it was submitted: read back as stored, so this
            # process never loads a driver plugin (models.plugins). The caller gets this
            # model, never the raw dict.
            caller_class = callers.get(delivery.caller)
            # An event about no job (``endpoint.*``) has no request; a caller that never
            # reads it (the built-in one) does not get it rebuilt.
            req = None
            if delivery.req and caller_class.uses_request:
                req = ExecutionRequest.model_validate(
                    {**delivery.req, "webhook": webhook}, context=STORED
                )
            event = json.loads(delivery.body)
        except (ValidationError, json.JSONDecodeError, PluginError, SealError) as exc:
            # A record this version cannot read (or a caller no longer installed): no attempt
            # can succeed, so the delivery fails now and says why.
            reason = short_reason(f"webhook cannot be delivered: {_unreadable(exc)}")
            log.error("delivery %s: %s", delivery.id, reason)
            return AttemptOutcome(Verdict.GIVE_UP, reason=reason)
        body = delivery.body
        if webhook.template is not None:
            try:
                body = render_body(webhook.template, event)
            except PayloadTemplateError as exc:
                # Never the default body instead: the receiver expects its own shape.
                reason = short_reason(f"payload template failed: {exc}")
                log.warning("delivery %s: %s", delivery.id, reason)
                return AttemptOutcome(Verdict.GIVE_UP, reason=reason)
        secrets = list(self.secrets)
        if webhook.secret is not None:
            secrets = [webhook.secret.get_secret_value()]
        context = DeliveryContext(
            signing_secrets=secrets,
            policy=self.policy,
            user_agent=USER_AGENT,
            http=self.http,
            signing_keys=self.signing_keys,
            sender=self.sender,
        )
        try:
            caller = caller_class(webhook)
            outcome = await asyncio.wait_for(
                caller.acall(
                    req=req,
                    job=store.JobSnapshot.from_record(delivery.job),
                    result=event.get("result"),
                    event=event,
                    body=body,
                    webhook_id=delivery.webhook_id,
                    attempt=delivery.attempts + 1,
                    context=context,
                ),
                timeout=webhook.timeout + 5,
            )
        except RetryDelivery as exc:
            return AttemptOutcome(Verdict.RETRY, reason=str(exc), retry_after=exc.after)
        except GiveUp as exc:
            return AttemptOutcome(Verdict.GIVE_UP, reason=str(exc))
        except TimeoutError:
            reason = f"caller timed out after {webhook.timeout:g} s"
            return AttemptOutcome(Verdict.RETRY, reason=reason)
        except retry.TRANSPORT_ERRORS as exc:
            # A caller that let the client's error through (a refused destination included).
            return retry.classify_exception(exc)
        except Exception as exc:
            log.warning(
                "delivery %s: caller %s raised", delivery.id, delivery.caller, exc_info=True
            )
            reason = short_reason(f"caller error: {type(exc).__name__}: {exc}")
            return AttemptOutcome(Verdict.RETRY, reason=reason)
        return outcome if outcome is not None else AttemptOutcome(Verdict.SUCCESS)

    def _policy_for(self, webhook: dict[str, Any]) -> retry.RetryPolicy:
        cfg = self.settings.webhooks
        intervals = webhook.get("retry_intervals") or cfg.retry_intervals
        schedule = tuple(intervals) if intervals else retry.DEFAULT_SCHEDULE
        max_retries = webhook.get("max_retries")
        if max_retries is None:
            max_retries = len(schedule)
        return retry.RetryPolicy(intervals=schedule, max_retries=max_retries, jitter=cfg.jitter)

    def _record(
        self, tag: str, delivery: store.Delivery, outcome: AttemptOutcome, latency: float
    ) -> None:
        """Hand the attempt's outcome to the journal (written to Redis in the next batch)."""
        outcome = outcome.checked()
        now = time.time()
        attempt_no = delivery.attempts + 1
        state = store.PENDING
        next_at: float | None = None
        exhausted = False
        if outcome.verdict == Verdict.SUCCESS:
            state = store.SUCCEEDED
        elif outcome.verdict == Verdict.GIVE_UP:
            state = store.FAILED
        else:
            policy = self._policy_for(delivery.webhook)
            delay = retry.next_attempt_delay(policy, delivery.retries_done, outcome, self._rng)
            if delay is None:
                state, exhausted = store.FAILED, True
            else:
                next_at = now + delay
        error = None if outcome.verdict == Verdict.SUCCESS else outcome.reason
        entry = store.AttemptLogEntry(
            attempt=attempt_no,
            at=now,
            url=delivery.url,
            status_code=outcome.status_code,
            latency_ms=round(latency * 1000, 3),
            verdict=outcome.verdict,
            error=error,
            remote_ip=outcome.remote_ip,
            response_body=outcome.response_body,
            next_attempt_at=next_at,
        )
        change = store.AttemptChange(
            state=state,
            attempts=attempt_no,
            updated_at=now,
            last_status_code=outcome.status_code,
            last_error=error or "",
            next_at=next_at,
            retries_done=delivery.retries_done + 1 if state == store.PENDING else None,
        )
        self.journal.add(
            AttemptRecord(
                delivery_id=delivery.id,
                tag=tag,
                attempts_before=delivery.attempts,
                entry=entry,
                change=change,
                verdict=outcome.verdict,
                latency=latency,
                exhausted=exhausted,
                refused=outcome.refused,
                endpoint_id=delivery.endpoint_id,
            )
        )
        if outcome.verdict != Verdict.SUCCESS:
            log.warning(
                "webhook %s for job %s to %s: attempt %d failed (%s)%s",
                delivery.id,
                delivery.job_id,
                delivery.url,
                attempt_no,
                outcome.reason,
                f"; next attempt in {next_at - now:.1f} s" if next_at else "; giving up",
            )


def _unreadable(exc: Exception) -> str:
    """Why a stored delivery cannot be read, without the values it holds (a validation
    error's text would quote them, and the webhook config carries its secrets)."""
    if isinstance(exc, ValidationError):
        return f"stored {exc.title} does not validate: " + "; ".join(
            f"{'.'.join(map(str, error['loc'])) or '(record)'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
    if isinstance(exc, json.JSONDecodeError):
        return f"stored event body is not JSON ({exc.msg})"
    return str(exc)


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the delivery service until ``stop`` is set (or forever)."""
    # httpx logs every request URL (with its query string) at INFO; the delivery log is ours.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Every delivery in flight may hold a connection: size the pool for that and make a busy
    # pool wait instead of raising. Plain or Sentinel URL alike (the factory picks the pool).
    from netpulse.runtime.redis_conn import connect_async_blocking

    redis = connect_async_blocking(
        settings.redis_url, max_connections=settings.webhooks.max_in_flight + 8, timeout=None
    )
    try:
        await DeliveryService(redis, settings).run(stop or asyncio.Event())
    finally:
        await redis.aclose()
