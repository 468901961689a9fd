"""Per-origin fairness: the in-flight cap, the task limit and the back-off after failures."""

from __future__ import annotations

import asyncio

from netpulse.webhooks.origins import OriginGate, origin_of


def test_origin_normalises_default_ports() -> None:
    assert origin_of("http://Example.com/x") == "http://example.com:80"
    assert origin_of("https://example.com:8443/x?y") == "https://example.com:8443"


def test_cap_limits_requests_in_flight_and_the_rest_wait() -> None:
    async def main() -> int:
        gate = OriginGate(cap=2, threshold=5, backoff=30, max_tasks=10)
        running = peak = 0

        async def attempt() -> None:
            nonlocal running, peak
            assert gate.deferral("http://a:80") is None
            async with gate.slot("http://a:80"):
                running += 1
                peak = max(peak, running)
                await asyncio.sleep(0.01)
                running -= 1

        await asyncio.gather(*(attempt() for _ in range(6)))
        return peak

    assert asyncio.run(main()) == 2


def test_an_origin_at_its_task_limit_is_deferred_and_others_are_not() -> None:
    async def main() -> None:
        gate = OriginGate(cap=1, threshold=5, backoff=30, max_tasks=2)
        async with gate.slot("http://a:80"):
            assert gate.deferral("http://a:80") is None  # one task so far, limit two
        state = gate.state("http://a:80")
        state.tasks = 2
        assert gate.deferral("http://a:80") is not None
        assert gate.deferral("http://b:80") is None

    asyncio.run(main())


def test_repeated_failures_back_the_origin_off_and_success_resets() -> None:
    gate = OriginGate(cap=10, threshold=3, backoff=30)
    origin = "http://a:80"
    for _ in range(3):
        gate.record(origin, succeeded=False, counts_as_failure=True)
    wait = gate.deferral(origin)
    assert wait is not None and 29 < wait <= 30
    gate.state(origin).blocked_until = 0
    gate.record(origin, succeeded=True, counts_as_failure=False)
    assert gate.state(origin).consecutive_failures == 0


def test_refusals_do_not_count_as_receiver_failures() -> None:
    gate = OriginGate(cap=10, threshold=1, backoff=30)
    gate.record("http://a:80", succeeded=False, counts_as_failure=False)
    assert gate.deferral("http://a:80") is None
