"""Retry policy: schedule, jitter bounds, response and exception verdicts, next delay."""

from __future__ import annotations

import random
import socket
from email.utils import formatdate

import aiohttp
import httpx
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from netpulse.net.client import short_reason
from netpulse.net.ssrf import DestinationRefused, DestinationUnresolvable
from netpulse.webhooks.callers import AttemptOutcome as Outcome
from netpulse.webhooks.delivery.retry import (
    DEFAULT_SCHEDULE,
    RetryPolicy,
    classify_exception,
    classify_response,
    next_attempt_delay,
    parse_retry_after,
)

NOW = 1_700_000_000.0


# --- schedule -------------------------------------------------------------------------------


def test_default_schedule_follows_standard_webhooks() -> None:
    assert DEFAULT_SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 36000)
    policy = RetryPolicy(jitter=0)
    assert policy.max_retries == 7
    assert [policy.delay_for(n) for n in range(1, 8)] == [float(s) for s in DEFAULT_SCHEDULE]


@pytest.mark.parametrize("retry_number", range(1, 10))
def test_jitter_stays_within_twenty_percent(retry_number: int) -> None:
    policy = RetryPolicy()
    rng = random.Random(1234)
    base = DEFAULT_SCHEDULE[min(retry_number, len(DEFAULT_SCHEDULE)) - 1]
    draws = [policy.delay_for(retry_number, rng) for _ in range(2000)]
    assert all(base * 0.8 <= d <= base * 1.2 for d in draws)
    # The draws really spread over the band, both below and above the base.
    assert min(draws) < base * 0.82 and max(draws) > base * 1.18
    assert len(set(draws)) > 1900


def test_seeded_rng_is_reproducible() -> None:
    policy = RetryPolicy()
    first = [policy.delay_for(3, random.Random(7)) for _ in range(3)]
    assert first == [policy.delay_for(3, random.Random(7)) for _ in range(3)]


def test_short_interval_list_reuses_last_value() -> None:
    policy = RetryPolicy(intervals=(1, 10), max_retries=5, jitter=0)
    assert [policy.delay_for(n) for n in range(1, 6)] == [1.0, 10.0, 10.0, 10.0, 10.0]


def test_delay_is_never_negative() -> None:
    policy = RetryPolicy(intervals=(0,), jitter=0.9)
    rng = random.Random(0)
    assert all(policy.delay_for(1, rng) == 0.0 for _ in range(100))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"intervals": ()}, "at least one interval"),
        ({"intervals": (5, -1)}, "finite and >= 0"),
        ({"max_retries": -1}, "max_retries"),
        ({"jitter": 1.5}, "jitter"),
        ({"retry_after_cap": -1}, "retry_after_cap"),
    ],
)
def test_invalid_policies_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)


def test_retry_number_starts_at_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        RetryPolicy().delay_for(0)


# --- responses ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_success(status: int) -> None:
    assert classify_response(status, {}).verdict == "success"


def test_410_gives_up() -> None:
    assert classify_response(410, {}) == Outcome("give_up", "receiver answered 410 Gone")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_3xx_is_a_failure_not_followed(status: int) -> None:
    verdict = classify_response(status, {"Location": "http://169.254.169.254/"})
    assert verdict == Outcome("retry", "redirect not followed (3xx is a failure)")


@pytest.mark.parametrize("status", [400, 401, 404, 500, 501, 503, 100, 999])
def test_other_statuses_are_retried(status: int) -> None:
    verdict = classify_response(status, {})
    assert verdict.verdict == "retry"
    assert verdict.retry_after is None
    assert str(status) in verdict.reason


def test_reason_names_the_status() -> None:
    assert classify_response(500, {}).reason == "receiver answered 500 Internal Server Error"


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retry_after_seconds_honoured(status: int) -> None:
    verdict = classify_response(status, {"Retry-After": "120"})
    assert verdict.verdict == "retry"
    assert verdict.retry_after == 120.0
    assert "Retry-After 120 s" in verdict.reason


def test_retry_after_http_date() -> None:
    date = formatdate(NOW + 90, usegmt=True)
    verdict = classify_response(503, {"retry-after": date}, now=NOW)
    assert verdict.retry_after == pytest.approx(90.0)


def test_retry_after_header_lookup_is_case_insensitive() -> None:
    assert classify_response(429, {"RETRY-AFTER": "3"}).retry_after == 3.0
    assert classify_response(429, httpx.Headers({"Retry-After": "4"})).retry_after == 4.0


def test_retry_after_is_clamped() -> None:
    assert classify_response(429, {"Retry-After": "999999"}).retry_after == 3600.0
    assert classify_response(429, {"Retry-After": "999"}, retry_after_cap=60).retry_after == 60
    past = formatdate(NOW - 500, usegmt=True)
    assert classify_response(503, {"Retry-After": past}, now=NOW).retry_after == 0.0
    assert classify_response(503, {"Retry-After": "-5"}).retry_after == 0.0


def test_unusable_or_misplaced_retry_after_is_ignored() -> None:
    verdict = classify_response(429, {"Retry-After": "soon"})
    assert verdict.verdict == "retry" and verdict.retry_after is None
    assert "unusable Retry-After 'soon'" in verdict.reason
    assert classify_response(500, {"Retry-After": "30"}).retry_after is None
    assert classify_response(429, {"Retry-After": "nan"}).retry_after is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), (" 42 ", 42.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("", None)],
)
def test_parse_retry_after(value: str, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


# --- exceptions -----------------------------------------------------------------------------


def _request(timeout: float = 5.0) -> httpx.Request:
    timeouts = httpx.Timeout(timeout).as_dict()
    return httpx.Request("POST", "http://127.0.0.1:9/", extensions={"timeout": timeouts})


def test_timeouts_say_how_long() -> None:
    read = httpx.ReadTimeout("timed out", request=_request(5.0))
    assert classify_exception(read) == Outcome("retry", "timed out after 5.0 s")
    connect = httpx.ConnectTimeout("timed out", request=_request(2.5))
    assert classify_exception(connect).reason == "timed out connecting after 2.5 s"
    assert classify_exception(httpx.PoolTimeout("x")).reason == "timed out"
    assert classify_exception(TimeoutError()).reason == "timed out"


def test_connection_refused_from_a_real_closed_port() -> None:
    # Bind then close to get a loopback port nobody listens on.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        httpx.Client(trust_env=False) as client,
        pytest.raises(httpx.ConnectError) as raised,
    ):
        client.post(f"http://127.0.0.1:{port}/", content=b"{}")
    assert classify_exception(raised.value) == Outcome("retry", "connection refused")


def test_plain_os_errors() -> None:
    assert classify_exception(ConnectionRefusedError()).reason == "connection refused"
    reset = httpx.ReadError("boom")
    reset.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    assert classify_exception(reset).reason == "connection reset by the receiver"


def test_protocol_errors_and_unknown_errors_are_retried_with_short_reason() -> None:
    verdict = classify_exception(httpx.RemoteProtocolError("Server disconnected"))
    assert verdict == Outcome("retry", "receiver broke the HTTP protocol: Server disconnected")
    long = classify_exception(RuntimeError("x" * 1000))
    assert long.verdict == "retry" and len(long.reason) <= 200


def test_ssrf_refusal_gives_up_and_dns_failure_retries() -> None:
    refused = classify_exception(DestinationRefused("127.0.0.1 is a loopback address"))
    reason = "destination refused: 127.0.0.1 is a loopback address"
    assert refused == Outcome("give_up", reason, refused=True)
    unresolved = classify_exception(DestinationUnresolvable("x.example", "Name not known"))
    assert unresolved.verdict == "retry" and "x.example" in unresolved.reason


# --- next attempt ---------------------------------------------------------------------------


def test_no_next_attempt_after_success_or_give_up() -> None:
    policy = RetryPolicy()
    assert next_attempt_delay(policy, 0, Outcome("success", "ok")) is None
    assert next_attempt_delay(policy, 0, classify_response(410, {})) is None


def test_schedule_applies_until_retries_are_exhausted() -> None:
    policy = RetryPolicy(jitter=0)
    failure = classify_response(500, {})
    delays = [next_attempt_delay(policy, done, failure) for done in range(8)]
    assert delays == [*map(float, DEFAULT_SCHEDULE), None]


def test_retry_after_is_the_delay_when_given() -> None:
    policy = RetryPolicy(retry_after_cap=600)
    slow_down = Outcome("retry", "429", retry_after=30.0)
    assert next_attempt_delay(policy, 3, slow_down) == 30.0  # shorter than the 2 h schedule
    assert next_attempt_delay(policy, 0, Outcome("retry", "429", retry_after=9999)) == 600
    assert next_attempt_delay(policy, 7, slow_down) is None


def test_next_delay_uses_jitter_with_given_rng() -> None:
    policy = RetryPolicy()
    failure = classify_response(502, {})
    delay = next_attempt_delay(policy, 1, failure, random.Random(3))
    assert delay == policy.delay_for(2, random.Random(3))
    assert 240 <= delay <= 360


def test_zero_retries_policy_never_retries() -> None:
    assert next_attempt_delay(RetryPolicy(max_retries=0), 0, Outcome("retry", "x")) is None


def test_protocol_errors_from_aiohttp_never_show_the_url_query() -> None:
    url = URL("http://127.0.0.1:1/hook?token=SECRET")
    info = aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict()), url)
    error = aiohttp.ClientResponseError(info, (), status=400, message="Invalid constant string")
    assert "SECRET" in str(error)  # what aiohttp would have put in the delivery log
    verdict = classify_exception(error)
    assert verdict == Outcome("retry", "receiver broke the HTTP protocol: Invalid constant string")


def test_reasons_drop_credentials_and_query_strings_of_urls() -> None:
    text = "failed: url='http://u:pw@10.0.0.1:8080/hook?token=SECRET' and https://x.example/a#f"
    assert short_reason(text) == "failed: url='http://10.0.0.1:8080/hook' and https://x.example/a"
    verdict = classify_exception(RuntimeError("bad http://h/p?token=SECRET"))
    assert "SECRET" not in verdict.reason
