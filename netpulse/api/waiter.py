"""`GET /jobs/{id}?wait=N`: wake waiting requests when a worker publishes a job's end.

One pub/sub subscription per controller process feeds every waiting request (no polling).
A waiter registers before it reads the job, so an end published in between is not missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from redis import asyncio as aioredis

from netpulse.keys import JOB_DONE_CHANNEL

log = logging.getLogger(__name__)


class JobWaiter:
    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._waiters: dict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _listen(self) -> None:
        while True:
            redis = aioredis.from_url(self.redis_url)
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(JOB_DONE_CHANNEL)
                    self._ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._wake(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job-end subscription lost; reconnecting in 1 s")
                self._wake_all()  # waiters re-read the job rather than wait blind
                await asyncio.sleep(1)
            finally:
                await redis.aclose()

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
