"""Undelivered events survive a restart of Redis (append-only file) and of the service."""

from __future__ import annotations

from pathlib import Path

from redis import Redis

from netpulse.config import load_settings
from netpulse.runtime.redis_server import RedisServer
from netpulse.webhooks import store
from netpulse.webhooks.outbox.record import record_final_event
from tests.support.delivery import delivery_service, record_success, request_with_webhook
from tests.support.receiver import Receiver


def test_pending_event_survives_redis_restart_and_is_delivered(
    tmp_path: Path, receiver: Receiver, netpulse_env: dict[str, str]
) -> None:
    data = tmp_path / "redis"
    data.mkdir()
    server = RedisServer(data_dir=data, appendonly=True)
    url = server.start()
    try:
        conn = Redis.from_url(url)
        req = request_with_webhook({"url": receiver.url(), "auth": ["u", "hook-pw"]})
        delivery_id = record_success(conn, "job-durable-1", req)
        assert delivery_id is not None
        # A second report of the same job's end is a duplicate and records nothing.
        again = record_final_event(
            conn,
            job_id="job-durable-1",
            req=req,
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
        assert conn.zscore(store.due_key_of(delivery_id), delivery_id) is not None

        settings = load_settings(redis={"url": url})
        with delivery_service(settings):
            [got] = receiver.wait_for("/hook")
        # The service wrote the attempt's outcome before it stopped.
        assert got.json()["id"] == "job-durable-1"
        assert b"device-pw" not in got.body and b"hook-pw" not in got.body
        raw = conn.hgetall(store.delivery_key(delivery_id))
        assert raw[b"state"] == b"succeeded"
        assert conn.zscore(store.due_key_of(delivery_id), delivery_id) is None
        assert b"device-pw" not in b"".join(raw.values())
    finally:
        server.stop()
