"""Per-origin fairness: the in-flight cap, the claim budget and the back-off after failures."""

from __future__ import annotations

import asyncio
import time

from netpulse.webhooks.delivery.origins import OriginGate, origin_of


def test_origin_normalises_default_ports() -> None:
    assert origin_of("http://Example.com/x") == "http://example.com:80"
    assert origin_of("https://example.com:8443/x?y") == "https://example.com:8443"


def test_cap_limits_requests_in_flight_and_the_rest_wait() -> None:
    async def main() -> int:
        gate = OriginGate(cap=2, threshold=5, backoff=30, max_tasks=10)
        running = peak = 0

        async def attempt() -> None:
            nonlocal running, peak
            gate.reserve("a")
            try:
                async with gate.slot("a"):
                    running += 1
                    peak = max(peak, running)
                    await asyncio.sleep(0.01)
                    running -= 1
            finally:
                gate.release("a")

        await asyncio.gather(*(attempt() for _ in range(6)))
        return peak

    assert asyncio.run(main()) == 2


def test_budget_shrinks_with_tasks_and_other_origins_keep_theirs() -> None:
    gate = OriginGate(cap=1, threshold=5, backoff=30, max_tasks=4)
    assert gate.budget("a") == 4
    for _ in range(4):
        gate.reserve("a")
    assert gate.budget("a") == 0
    assert gate.budget("b") == 4


def test_release_reports_the_low_water_mark_once() -> None:
    gate = OriginGate(cap=1, threshold=5, backoff=30, max_tasks=4)
    for _ in range(4):
        gate.reserve("a")
    assert [gate.release("a") for _ in range(4)] == [False, True, False, False]
    assert gate.budget("a") == 4


def test_repeated_failures_back_the_origin_off_and_success_resets() -> None:
    gate = OriginGate(cap=10, threshold=3, backoff=30)
    for _ in range(3):
        gate.record("a", succeeded=False, counts_as_failure=True)
    assert gate.budget("a") == 0
    assert 29 < gate.blocked_until("a") - time.time() <= 30
    assert gate.budget("a", now=gate.blocked_until("a") + 0.1) > 0
    gate.record("a", succeeded=True, counts_as_failure=False)
    assert gate.blocked_until("a") == 0
    assert gate.state("a").consecutive_failures == 0


def test_refusals_do_not_count_as_receiver_failures() -> None:
    gate = OriginGate(cap=10, threshold=1, backoff=30)
    gate.record("a", succeeded=False, counts_as_failure=False)
    assert gate.budget("a") > 0
