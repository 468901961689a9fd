"""Per-origin fairness: the in-flight cap and the back-off after repeated failures."""

from __future__ import annotations

from netpulse.webhooks.origins import OriginGate, origin_of


def test_origin_normalises_default_ports() -> None:
    assert origin_of("http://Example.com/x") == "http://example.com:80"
    assert origin_of("https://example.com:8443/x?y") == "https://example.com:8443"


def test_cap_defers_once_full_and_frees_on_release() -> None:
    gate = OriginGate(cap=2, threshold=5, backoff=30)
    origin = "http://a:80"
    gate.acquire(origin)
    gate.acquire(origin)
    assert gate.deferral(origin) is not None
    assert gate.deferral("http://b:80") is None
    gate.release(origin, succeeded=True, counts_as_failure=False)
    assert gate.deferral(origin) is None


def test_repeated_failures_back_the_origin_off_and_success_resets() -> None:
    gate = OriginGate(cap=10, threshold=3, backoff=30)
    origin = "http://a:80"
    for _ in range(3):
        gate.acquire(origin)
        gate.release(origin, succeeded=False, counts_as_failure=True)
    wait = gate.deferral(origin, now=None)
    assert wait is not None and 29 < wait <= 30
    gate.state(origin).blocked_until = 0
    gate.acquire(origin)
    gate.release(origin, succeeded=True, counts_as_failure=False)
    assert gate.state(origin).consecutive_failures == 0


def test_refusals_do_not_count_as_receiver_failures() -> None:
    gate = OriginGate(cap=10, threshold=1, backoff=30)
    gate.acquire("http://a:80")
    gate.release("http://a:80", succeeded=False, counts_as_failure=False)
    assert gate.deferral("http://a:80") is None
