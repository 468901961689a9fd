"""How the delivery loop shares its free slots between origins with due deliveries."""

from __future__ import annotations

import time

from redis import asyncio as aioredis

from netpulse.config import load_settings
from netpulse.webhooks.delivery.service import DeliveryService


def _service(**webhooks: object) -> DeliveryService:
    settings = load_settings(webhooks=webhooks)
    # No command is sent: planning is pure; the client only has to exist.
    return DeliveryService(aioredis.Redis(), settings)


def test_an_idle_origin_is_planned_before_busy_ones_and_may_use_the_reserve() -> None:
    service = _service(max_in_flight=16, max_in_flight_per_origin=1)  # 4 per origin, 2 reserved
    for _ in range(3):
        service.gate.reserve("busy")
    plan, _ = service._plan_claims(["busy", "idle"], free=3, now=time.time())
    # The idle origin goes first and takes all 3 free slots; the busy one must leave the
    # reserve free, so it gets nothing.
    assert plan == [("idle", 3)]


def test_busy_origins_leave_the_reserve_free() -> None:
    service = _service(max_in_flight=16, max_in_flight_per_origin=1)
    service.gate.reserve("a")
    plan, _ = service._plan_claims(["a"], free=10, now=time.time())
    assert plan == [("a", 3)]  # its budget (4 - 1 held), well inside 10 - 2
    plan, _ = service._plan_claims(["a"], free=3, now=time.time())
    assert plan == [("a", 1)]  # only what exceeds the reserve of 2


def test_a_backed_off_origin_is_skipped_and_sets_when_to_look_again() -> None:
    service = _service(max_in_flight=16, origin_failure_threshold=1, origin_backoff_seconds=0.5)
    service.gate.record("down", succeeded=False, counts_as_failure=True)
    now = time.time()
    plan, retry_at = service._plan_claims(["down", "up"], free=16, now=now)
    assert [tag for tag, _ in plan] == ["up"]
    assert now < retry_at <= now + 0.5
