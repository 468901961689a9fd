"""`GET /jobs/{id}?wait=N`: wake waiting requests when a worker publishes a job's end.

One pub/sub subscription per controller process feeds every waiting request (no polling).
A waiter registers before it reads the job, so an end published in between is not missed.

Pub/sub is fire-and-forget: an end published while the subscription is down (Redis restart,
Sentinel failover, dropped connection) reaches nobody. So whenever the subscription is lost
*and* whenever it is confirmed again, every waiting request is woken to read its job again
(``GET /jobs/{id}`` then answers with the job as it is, which may still be running, before its
``wait`` is over: early rather than a whole ``wait`` late). The subscription is made
through :func:`netpulse.runtime.redis_conn.connect_async`, so after a failover it is made on
the new master.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from netpulse.keys import JOB_DONE_CHANNEL
from netpulse.runtime.outage import BACKOFF_CAP, BACKOFF_FIRST, OutageLog, is_outage
from netpulse.runtime.redis_conn import connect_async
from netpulse.runtime.tasks import end_tasks, wait_or_timeout

log = logging.getLogger(__name__)


class JobWaiter:
    """Wakes ``GET /jobs/{id}?wait=N`` requests when their job's end is published."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._waiters: dict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._outage = OutageLog(log, "job-end subscription")
        #: How many times the subscription was confirmed (1 after start; more after losses).
        self.subscriptions = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def stop(self) -> None:
        """End the subscription; bounded, as redis-py may swallow the cancellation."""
        self._stopping.set()
        if self._task is not None:
            await end_tasks([self._task], "job-end subscription")

    async def _listen(self) -> None:
        """Subscribe, dispatch job ends, and subscribe again after any loss, until stopped."""
        delay = BACKOFF_FIRST
        while not self._stopping.is_set():
            confirmed = self.subscriptions
            try:
                await self._subscribe_and_dispatch()
                # listen() only ends when nothing is subscribed any more, which this class
                # never asks for: treat it as a loss too.
                log.warning("job-end subscription ended by itself; subscribing again")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_outage(exc):
                    self._outage.failed(exc)  # one line per outage, not one per retry
                else:
                    log.exception("job-end subscription failed; subscribing again")
            if self.subscriptions > confirmed:
                delay = BACKOFF_FIRST  # it worked for a while: start the back-off over
            self._wake_all()  # waiters re-read their job rather than wait blind
            await wait_or_timeout(self._stopping, delay)
            delay = min(delay * 2, BACKOFF_CAP)

    async def _subscribe_and_dispatch(self) -> None:
        redis = connect_async(self.redis_url, health_check_interval=30)
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(JOB_DONE_CHANNEL)
                async for message in pubsub.listen():
                    self._handle(message)
        finally:
            await redis.aclose()

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "message":
            data = message["data"]
            self._wake(data.decode() if isinstance(data, bytes) else str(data))
        elif kind == "subscribe":
            # Confirmed by the server (first time, or after redis-py reconnected by itself):
            # from now on no end is missed, but one may have been in the gap before.
            self.subscriptions += 1
            self._outage.recovered()
            if self.subscriptions > 1:
                log.info(
                    "job-end subscription restored; waking %d waiting job(s)", len(self._waiters)
                )
            self._wake_all()
            self._ready.set()

    def _wake(self, job_id: str) -> None:
        for future in self._waiters.pop(job_id, ()):
            if not future.done():
                future.set_result(None)

    def _wake_all(self) -> None:
        for job_id in list(self._waiters):
            self._wake(job_id)

    def register(self, job_id: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[job_id].add(future)
        return future

    def forget(self, job_id: str, future: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(job_id)
        if waiters is not None:
            waiters.discard(future)
            if not waiters:
                self._waiters.pop(job_id, None)
