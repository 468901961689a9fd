"""Write attempt outcomes to Redis in batches (the delivery log, record state, counters).

At 1,000 deliveries per second, one Redis transaction per attempt would cost more CPU than
the HTTP request itself. The delivery service instead hands each outcome to the journal,
which writes everything that finished meanwhile in one pipeline: one ``FINISH`` script per
attempt (log entry, record fields, next due time or removal from the due set, all atomic)
and the counters of the whole batch as a few ``HINCRBY``. A batch is written as soon as the
previous one is done, so under light load each outcome is written at once.

If the process dies before a batch is written, those deliveries are still leased in Redis and
are attempted again when the lease ends: delivery stays at-least-once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from netpulse.runtime.scripts import aload as aload_scripts
from netpulse.webhooks import store
from netpulse.webhooks.delivery.metrics import LATENCY_BUCKETS
from netpulse.webhooks.endpoints import health

log = logging.getLogger(__name__)


@dataclass
class AttemptRecord:
    """One attempt's outcome, as it goes to Redis."""

    delivery_id: str
    tag: str
    #: the record's attempt count when this attempt started (FINISH ignores a stale outcome)
    attempts_before: int
    entry: store.AttemptLogEntry
    change: store.AttemptChange
    verdict: str
    latency: float
    exhausted: bool = False
    refused: bool = False
    #: the endpoint the delivery goes to ('' for a request's own webhook)
    endpoint_id: str = ""

    @property
    def health_outcome(self) -> health.Outcome:
        """What the attempt says about its endpoint's health."""
        if self.change.state == store.SUCCEEDED:
            return health.Outcome.SUCCESS
        if self.change.state == store.FAILED:
            return health.Outcome.FAILED_DELIVERY
        return health.Outcome.FAILURE

    def counters(self) -> Counter[str]:
        counts: Counter[str] = Counter(attempts=1)
        counts[f"attempts_{self.verdict}"] += 1
        if self.exhausted:
            counts["exhausted"] += 1
        if self.refused:
            counts["refused"] += 1
        bucket = next((b for b in LATENCY_BUCKETS if self.latency <= b), "inf")
        counts[f"latency_le_{bucket}"] += 1
        return counts


@dataclass(frozen=True)
class EndpointPolicy:
    """When an endpoint is disabled (``webhooks.endpoint_disable_after_*``), and who is told
    when its health changes: ``notify(endpoint_id, notice)`` with ``disabled`` or
    ``recovered``."""

    disable_after_seconds: float
    disable_after_failed: int
    notify: Callable[[str, str], None]
    #: whether the endpoint was failing when last looked at (only then is a success
    #: reported: it may be the recovery)
    is_failing: Callable[[str], bool]


class OutcomeJournal:
    def __init__(
        self, redis: aioredis.Redis, retention: int, endpoints: EndpointPolicy | None = None
    ) -> None:
        self.redis = redis
        self.retention = retention
        self.endpoints = endpoints
        self.scripts = store.scripts(redis)
        self.health_scripts = health.scripts(redis)
        self._pending: list[AttemptRecord] = []
        self._ready = asyncio.Event()
        self._closing = False

    def add(self, record: AttemptRecord) -> None:
        self._pending.append(record)
        self._ready.set()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def run(self) -> None:
        """Write batches until :meth:`close`, then return with nothing left pending (unless
        Redis stays unavailable: :meth:`flush_all` then reports what was not written)."""
        while not (self._closing and not self._pending):
            await self._ready.wait()
            self._ready.clear()
            try:
                written = await self.flush()
            except Exception:  # a bug must not stop every later outcome from being written
                log.exception("writing attempt outcomes failed; continuing")
                written = False
            if not written:
                if self._closing:
                    return
                await asyncio.sleep(1)  # Redis unavailable: keep the batch, try again

    def close(self) -> None:
        """Ask :meth:`run` to write what is pending and return."""
        self._closing = True
        self._ready.set()

    async def flush(self) -> bool:
        """Write what is pending now; False (and the records kept) when Redis is unreachable.

        A record that cannot be encoded is logged and dropped (its delivery is attempted again
        after its lease); a batch Redis refuses is logged and dropped for the same reason.
        Neither may block the outcomes that follow.
        """
        batch, self._pending = self._pending, []
        if not batch:
            return True
        pipe = self.redis.pipeline(transaction=False)
        counts: Counter[str] = Counter()
        latency_sum = 0.0
        #: (position in the pipeline, endpoint) of each endpoint health update
        health_at: list[tuple[int, str]] = []
        queued = 0
        for record in batch:
            try:
                await self.scripts.finish(
                    record.delivery_id,
                    record.tag,
                    record.attempts_before,
                    record.entry,
                    record.change,
                    self.retention,
                    client=pipe,
                )
                queued += 1
                if (
                    record.endpoint_id
                    and self.endpoints is not None
                    and (
                        record.health_outcome != health.Outcome.SUCCESS
                        or self.endpoints.is_failing(record.endpoint_id)
                    )
                ):
                    await self.health_scripts.outcome(
                        record.endpoint_id,
                        record.health_outcome,
                        record.entry.at,
                        self.endpoints.disable_after_seconds,
                        self.endpoints.disable_after_failed,
                        client=pipe,
                    )
                    health_at.append((queued, record.endpoint_id))
                    queued += 1
            except Exception:
                log.exception("attempt outcome of %s cannot be stored; dropped", record.delivery_id)
                continue
            counts.update(record.counters())
            latency_sum += record.latency
        for name, count in counts.items():
            pipe.hincrby(store.STATS, name, count)
        pipe.hincrbyfloat(store.STATS, "latency_sum", latency_sum)
        try:
            results = await pipe.execute()
        except asyncio.CancelledError:
            self._pending[:0] = batch  # not known to be written: keep it for the next flush
            raise
        except NoScriptError:
            # Redis restarted and forgot the scripts: load them, write the batch again.
            self._pending[:0] = batch
            await aload_scripts(self.redis, [*self.scripts.all, *self.health_scripts.all])
            self._ready.set()
            return True
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning(
                "could not write %d attempt outcome(s) to Redis (%s: %s); retrying",
                len(batch),
                type(exc).__name__,
                exc,
            )
            self._pending[:0] = batch
            self._ready.set()
            return False
        except Exception:
            log.exception(
                "Redis refused a batch of %d attempt outcome(s); dropped (those deliveries are "
                "attempted again after their lease)",
                len(batch),
            )
            return True
        if self.endpoints is not None:
            for position, endpoint_id in health_at:
                notice = results[position]
                notice = notice.decode() if isinstance(notice, bytes) else notice
                if notice:
                    self.endpoints.notify(endpoint_id, notice)
        return True

    async def flush_all(self, attempts: int = 5) -> None:
        """Write everything still pending (at shutdown), trying a few times."""
        for _ in range(attempts):
            if await self.flush() and not self._pending:
                return
            await asyncio.sleep(0.5)
        if self._pending:
            log.error(
                "%d attempt outcome(s) not written (Redis unavailable); those deliveries are "
                "attempted again when their lease ends",
                len(self._pending),
            )
