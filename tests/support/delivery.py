"""The webhook delivery service in the test's own process (on its own event loop thread), and
a one-call way to record a final event straight into Redis, for tests that need a private
Redis or the service's internals rather than the session's delivery process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis import Redis
from redis import asyncio as aioredis

from netpulse.config import Settings
from netpulse.models.request import ExecutionRequest
from netpulse.webhooks.delivery.service import DeliveryService
from netpulse.webhooks.outbox.record import record_final_event


def request_with_webhook(webhook: dict[str, Any], password: str = "device-pw") -> ExecutionRequest:
    return ExecutionRequest.model_validate(
        {
            "driver": "paramiko",
            "connection_args": {"host": "127.0.0.1", "username": "u", "password": password},
            "command": "true",
            "webhook": webhook,
        }
    )


def record_success(conn: Redis, job_id: str, req: ExecutionRequest) -> str | None:
    """Record ``job_id``'s final ``job.completed`` event; the delivery id, None if a duplicate."""
    return record_final_event(
        conn,
        job_id=job_id,
        req=req,
        status="finished",
        meta={"host": "127.0.0.1", "command": ["true"]},
        created_at=None,
        started_at=None,
        ended_at=None,
        retval=[{"command": "true", "stdout": "", "exit_status": 0}],
        error=None,
    )


@contextmanager
def delivery_service(settings: Settings) -> Iterator[None]:
    """Run a DeliveryService on ``settings.redis_url`` until the block ends; fail the test if
    it does not stop within 30 s of being asked to."""
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()

    async def main() -> None:
        redis = aioredis.from_url(settings.redis_url)
        try:
            await DeliveryService(redis, settings).run(stop)
        finally:
            await redis.aclose()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),))
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        assert not thread.is_alive(), "the delivery service did not stop"
        loop.close()
