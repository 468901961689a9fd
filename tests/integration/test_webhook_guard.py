"""The SSRF guard is part of the HTTP client: a caller that sends through ``context.http``
(built in or third-party) cannot reach an address the policy refuses; the delivery process
never loads a driver plugin, hands callers typed values, each once, and fails a stored
record it cannot read with a reason."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from netpulse.config import load_settings
from netpulse.models.request import ExecutionRequest
from netpulse.webhooks import deliveries, store
from netpulse.webhooks.callers import BaseWebHookCaller
from netpulse.webhooks.callers import registry as callers
from tests.support.delivery import delivery_service, record_success, request_with_webhook
from tests.support.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]


class SneakyCaller(BaseWebHookCaller):
    """Ignores the webhook's URL and posts to an address of its own choosing."""

    webhook_name = "sneaky"
    target = ""

    async def acall(self, req: Any, job: Any, result: Any, **kwargs: Any) -> None:
        reply = await kwargs["context"].http.post(self.target, content=b"{}")
        reply.raise_for_status()


@pytest.fixture
def sneaky() -> Any:
    callers.register(SneakyCaller)
    yield SneakyCaller
    callers.plugins.pop("sneaky", None)


class InspectingCaller(BaseWebHookCaller):
    """Notes what it was given and delivers nothing."""

    webhook_name = "inspecting"
    seen: list[dict[str, Any]] = []

    async def acall(self, req: Any, job: Any, result: Any, **kwargs: Any) -> None:
        self.seen.append({"req": req, "job": job, "kwargs": kwargs})


@pytest.fixture
def inspecting() -> Any:
    InspectingCaller.seen = []
    callers.register(InspectingCaller)
    yield InspectingCaller
    callers.plugins.pop("inspecting", None)


def wait_final(conn: Redis, delivery_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = deliveries.get(conn, delivery_id)
        if view["state"] != store.PENDING:
            return view
        time.sleep(0.05)
    raise AssertionError(f"delivery {delivery_id} still pending after {timeout} s")


def test_a_custom_caller_cannot_reach_an_address_the_policy_refuses(
    private_redis: str, sneaky: Any
) -> None:
    with (
        Receiver("127.0.0.1") as allowed,  # where the webhook says to send
        Receiver("127.0.0.2") as forbidden,  # where the caller tries to send instead
    ):
        sneaky.target = forbidden.url("/stolen")
        conn = Redis.from_url(private_redis)
        req = request_with_webhook({"name": "sneaky", "url": allowed.url("/hook")})
        delivery_id = record_success(conn, str(uuid.uuid4()), req)
        assert delivery_id is not None
        settings = load_settings(
            redis={"url": private_redis}, webhooks={"allow_cidrs": ["127.0.0.1/32"]}
        )
        with delivery_service(settings):
            view = wait_final(conn, delivery_id)
        assert view["state"] == store.FAILED
        [attempt] = view["attempt_log"]
        assert "destination refused" in attempt["error"]
        assert "127.0.0.2" in attempt["error"]
        assert forbidden.received == []  # nothing arrived, not even a connection's request
        assert allowed.received == []


def test_a_caller_gets_typed_values_each_given_once(private_redis: str, inspecting: Any) -> None:
    conn = Redis.from_url(private_redis)
    req = request_with_webhook({"name": "inspecting", "url": "http://127.0.0.1:9/hook"})
    delivery_id = record_success(conn, "job-inspected", req)
    assert delivery_id is not None
    with delivery_service(load_settings(redis={"url": private_redis})):
        assert wait_final(conn, delivery_id)["state"] == store.SUCCEEDED
    [call] = inspecting.seen
    assert type(call["req"]) is ExecutionRequest
    assert call["req"].connection_args.password is None  # stored without credentials
    assert type(call["job"]) is store.JobSnapshot and call["job"].id == "job-inspected"
    kwargs = call["kwargs"]
    assert sorted(kwargs) == ["attempt", "body", "context", "event", "webhook_id"]
    assert (kwargs["attempt"], kwargs["webhook_id"]) == (1, store.webhook_id_of("job-inspected"))
    assert isinstance(kwargs["body"], bytes) and kwargs["event"]["id"] == "job-inspected"
    lent = {field.name for field in fields(kwargs["context"])}
    assert lent.isdisjoint(kwargs), "a value given both in context and as an argument"


def _damage_request(conn: Redis, delivery_id: str) -> None:
    """Make the stored request one this version cannot read (as if written by another
    version, or damaged)."""
    key = store.delivery_key(delivery_id)
    delivery = store.Delivery.from_hash(conn.hgetall(key))
    delivery.req = {**delivery.req, "connection_args": "NOT-AN-OBJECT-SECRET"}
    conn.hset(key, mapping=delivery.to_hash())


def test_a_stored_record_that_does_not_validate_fails_with_a_reason(
    private_redis: str, receiver: Receiver, inspecting: Any
) -> None:
    conn = Redis.from_url(private_redis)
    # A caller that reads the request cannot be given it: the delivery fails and says why.
    req = request_with_webhook({"name": "inspecting", "url": receiver.url("/unreadable")})
    delivery_id = record_success(conn, str(uuid.uuid4()), req)
    assert delivery_id is not None
    _damage_request(conn, delivery_id)
    # The built-in caller never reads the request: its event is delivered all the same.
    plain = request_with_webhook({"url": receiver.url("/plain")})
    plain_id = record_success(conn, str(uuid.uuid4()), plain)
    assert plain_id is not None
    _damage_request(conn, plain_id)
    with delivery_service(load_settings(redis={"url": private_redis})):
        view = wait_final(conn, delivery_id)
        assert wait_final(conn, plain_id)["state"] == store.SUCCEEDED
    assert view["state"] == store.FAILED
    [attempt] = view["attempt_log"]
    assert attempt["error"].startswith("webhook cannot be delivered: stored ExecutionRequest")
    assert "connection_args" in attempt["error"]
    assert "NOT-AN-OBJECT-SECRET" not in attempt["error"]  # values are not quoted
    assert inspecting.seen == [] and receiver.on("/unreadable") == []
    assert len(receiver.on("/plain")) == 1


DELIVER_ONE = textwrap.dedent(
    """
    import sys, time, uuid
    from redis import Redis
    from netpulse.config import load_settings
    from netpulse.webhooks import deliveries
    from tests.support.delivery import delivery_service, record_success, request_with_webhook

    url, hook = sys.argv[1], sys.argv[2]
    conn = Redis.from_url(url)
    delivery_id = record_success(conn, str(uuid.uuid4()), request_with_webhook({"url": hook}))
    with delivery_service(load_settings(redis={"url": url})):
        deadline = time.monotonic() + 20
        while deliveries.get(conn, delivery_id)["state"] == "pending":
            assert time.monotonic() < deadline, "not delivered"
            time.sleep(0.05)
    print(deliveries.get(conn, delivery_id)["state"])
    drivers = ("netpulse.plugins.drivers", "netmiko", "napalm", "pyeapi", "paramiko")
    print(",".join(sorted(m for m in sys.modules if m.startswith(drivers))))
    """
)


def test_the_delivery_process_loads_no_driver(private_redis: str, receiver: Receiver) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", DELIVER_ONE, private_redis, receiver.url("/plain")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    state, loaded = done.stdout.splitlines()[-2:]
    assert state == "succeeded"
    assert receiver.wait_for("/plain")
    assert loaded == ""
