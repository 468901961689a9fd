"""One device, one key: a request that leaves out the port and one that names the driver's
default port reach the same device, so they share its per-device limit (vty lines)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

from netpulse.config import NodeSettings, Settings
from netpulse.dispatch import submit
from netpulse.models.request import ExecutionRequest


@pytest.fixture
def conn(private_redis: str) -> Iterator[Redis]:
    client = Redis.from_url(private_redis)
    yield client
    client.close()


def eapi_job(**port: int) -> ExecutionRequest:
    return ExecutionRequest.model_validate(
        {
            "driver": "pyeapi",
            "queue_strategy": "fifo",
            "connection_args": {"host": "127.0.0.1", "username": "admin", **port},
            "command": "show version",
        }
    )


def test_the_default_port_and_no_port_share_one_device_limit(conn: Redis) -> None:
    # No worker reads this queue: the first job keeps the device's only slot.
    settings = Settings(node=NodeSettings(fifo_concurrency=1))
    without_port = submit.enqueue(eapi_job(), conn, settings)
    with_port = submit.enqueue(eapi_job(port=443), conn, settings)
    other_port = submit.enqueue(eapi_job(port=8443), conn, settings)

    assert without_port.meta["device"] == with_port.meta["device"] == "127.0.0.1:443"
    assert without_port.get_status() == "queued"
    assert with_port.get_status() == "rate_limited"  # waits for the same device's slot
    assert other_port.get_status() == "queued"  # another port is another device


def test_http_transport_defaults_to_port_80(conn: Redis) -> None:
    req = ExecutionRequest.model_validate(
        {
            "driver": "pyeapi",
            "connection_args": {"host": "127.0.0.1", "username": "admin", "transport": "http"},
            "command": "show version",
        }
    )
    assert submit.device_key(req) == "127.0.0.1:80"
