"""Undelivered events survive a restart of Redis (append-only file) and of the service."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from redis import Redis
from redis import asyncio as aioredis

from netpulse.config import load_settings
from netpulse.models.request import ExecutionRequest
from netpulse.runtime.redis_server import RedisServer
from netpulse.webhooks import store
from netpulse.webhooks.outbox import record_final_event
from netpulse.webhooks.service import DeliveryService
from tests.support.receiver import Receiver


def _request(url: str) -> ExecutionRequest:
    return ExecutionRequest.model_validate(
        {
            "driver": "paramiko",
            "connection_args": {"host": "127.0.0.1", "username": "u", "password": "device-pw"},
            "command": "true",
            "webhook": {"url": url, "auth": ["u", "hook-pw"]},
        }
    )


def test_pending_event_survives_redis_restart_and_is_delivered(
    tmp_path: Path, receiver: Receiver, netpulse_env: dict[str, str]
) -> None:
    data = tmp_path / "redis"
    data.mkdir()
    server = RedisServer(data_dir=data, appendonly=True)
    url = server.start()
    try:
        conn = Redis.from_url(url)
        delivery_id = record_final_event(
            conn,
            job_id="job-durable-1",
            req=_request(receiver.url()),
            status="finished",
            meta={"host": "127.0.0.1", "command": ["true"]},
            created_at=None,
            started_at=None,
            ended_at=None,
            retval=[{"command": "true", "stdout": "", "exit_status": 0}],
            error=None,
        )
        assert delivery_id is not None
        # A second report of the same job's end is a duplicate and records nothing.
        again = record_final_event(
            conn,
            job_id="job-durable-1",
            req=_request(receiver.url()),
            status="failed",
            meta={},
            created_at=None,
            started_at=None,
            ended_at=None,
            retval=None,
            error=None,
        )
        assert again is None
        conn.close()
        server.stop()
        url = server.start()
        conn = Redis.from_url(url)
        assert conn.zscore(store.DUE, delivery_id) is not None

        settings = load_settings(redis={"url": url})
        stop = asyncio.Event()
        loop = asyncio.new_event_loop()

        async def main() -> None:
            redis = aioredis.from_url(url)
            try:
                await DeliveryService(redis, settings).run(stop)
            finally:
                await redis.aclose()

        thread = threading.Thread(target=loop.run_until_complete, args=(main(),))
        thread.start()
        try:
            [got] = receiver.wait_for("/hook")
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(timeout=15)
        assert got.json()["id"] == "job-durable-1"
        assert b"device-pw" not in got.body and b"hook-pw" not in got.body
        raw = conn.hgetall(store.delivery_key(delivery_id))
        assert raw[b"state"] == b"succeeded"
        assert b"device-pw" not in b"".join(raw.values())
    finally:
        server.stop()
