"""Retry policy for webhook deliveries: pure functions, no I/O, no clock unless given.

The flow is: one attempt -> :func:`classify_response` or :func:`classify_exception` gives a
:class:`Verdict` -> :func:`next_attempt_delay` says how long to wait before the next attempt,
or ``None`` to stop. Keeping these pure lets the delivery service, the CLI and the tests share
one definition of "what counts as delivered".
"""

from __future__ import annotations

import math
import random
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Literal

import aiohttp
import httpx

from netpulse.webhooks.ssrf import DestinationRefused, DestinationUnresolvable

# Seconds to wait before retry 1, 2, ... after the immediate first attempt: 5 s, 5 min,
# 30 min, 2 h, 5 h, 10 h, 10 h, as Standard Webhooks suggests (about 27 h in total).
DEFAULT_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
DEFAULT_RETRY_AFTER_CAP = 3600.0

# Statuses whose Retry-After we honour: the receiver is asking us to slow down.
SLOW_DOWN_STATUSES = frozenset({429, 502, 503, 504})

_MAX_REASON = 200
_rng = random.Random()


@dataclass(frozen=True)
class RetryPolicy:
    """How many retries, how far apart, and how much a receiver's Retry-After may ask for.

    ``jitter`` spreads retries by ±that fraction so that many deliveries failing together
    (receiver outage) do not all come back at the same second. ``retry_after_cap`` bounds a
    receiver's Retry-After so one endpoint cannot park a delivery for days.
    """

    intervals: tuple[float, ...] = DEFAULT_SCHEDULE
    max_retries: int = len(DEFAULT_SCHEDULE)
    jitter: float = 0.2
    retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP

    def __post_init__(self) -> None:
        intervals = tuple(float(i) for i in self.intervals)
        if not intervals:
            raise ValueError("A retry policy needs at least one interval.")
        if any(not math.isfinite(i) or i < 0 for i in intervals):
            raise ValueError(f"Retry intervals must be finite and >= 0, got {intervals}.")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}.")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}.")
        if not self.retry_after_cap >= 0:
            raise ValueError(f"retry_after_cap must be >= 0, got {self.retry_after_cap}.")
        object.__setattr__(self, "intervals", intervals)

    def delay_for(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 = first retry), with jitter.

        Uses ``intervals[retry_number - 1]``; past the end of the list the last interval is
        reused, so a short list means "then every N seconds". Never negative.
        """
        if retry_number < 1:
            raise ValueError(f"retry_number starts at 1, got {retry_number}.")
        base = self.intervals[min(retry_number, len(self.intervals)) - 1]
        spread = (rng or _rng).uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return max(0.0, base * (1.0 + spread))


@dataclass(frozen=True)
class Verdict:
    """The outcome of one attempt: delivered, try again later, or stop for good."""

    kind: Literal["success", "retry", "give_up"]
    reason: str
    retry_after: float | None = None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works for dicts as well as httpx.Headers."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def parse_retry_after(value: str, now: float | None = None) -> float | None:
    """Return the seconds a Retry-After value asks for (delay-seconds or HTTP-date).

    Returns None when the value is unusable; a date in the past gives 0.
    """
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" means UTC with unknown local zone
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _status_text(status_code: int) -> str:
    try:
        return f"{status_code} {HTTPStatus(status_code).phrase}"
    except ValueError:
        return str(status_code)


def classify_response(
    status_code: int,
    headers: Mapping[str, str],
    now: float | None = None,
    *,
    retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP,
) -> Verdict:
    """Judge an HTTP response by Standard Webhooks rules.

    2xx is success. 410 Gone means the receiver wants no more events: give up. 3xx is a
    failure because redirects are never followed (they could lead to an unchecked address).
    429/502/503/504 carrying Retry-After give ``retry_after`` clamped to
    ``[0, retry_after_cap]``. Everything else is retried.
    """
    if 200 <= status_code <= 299:
        return Verdict("success", f"receiver answered {_status_text(status_code)}")
    if status_code == 410:
        return Verdict("give_up", "receiver answered 410 Gone")
    if 300 <= status_code <= 399:
        return Verdict("retry", "redirect not followed (3xx is a failure)")
    reason = f"receiver answered {_status_text(status_code)}"
    if status_code in SLOW_DOWN_STATUSES:
        raw = _header(headers, "retry-after")
        if raw is not None:
            wait = parse_retry_after(raw, now)
            if wait is None:
                return Verdict("retry", f"{reason} (unusable Retry-After {raw!r} ignored)")
            wait = min(wait, max(0.0, retry_after_cap))
            return Verdict("retry", f"{reason}, Retry-After {wait:g} s", retry_after=wait)
    return Verdict("retry", reason)


def _timeout_seconds(exc: httpx.TimeoutException) -> float | None:
    """The timeout that expired, read from the request httpx attached to the error."""
    phase = {
        httpx.ConnectTimeout: "connect",
        httpx.ReadTimeout: "read",
        httpx.WriteTimeout: "write",
        httpx.PoolTimeout: "pool",
    }.get(type(exc))
    try:
        timeouts = exc.request.extensions.get("timeout", {})
    except RuntimeError:  # no request attached
        return None
    value = timeouts.get(phase) if phase else None
    return float(value) if isinstance(value, int | float) else None


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


# A URL in an error text, split so credentials and the query string can be left out: the
# delivery log shows URLs without them (webhook URLs may carry a token in the query).
_URL = re.compile(r"(https?://)(?:[^/\s'\"@]*@)?([^\s'\"?#]*)(?:[?#][^\s'\"]*)?")


def short_reason(text: str) -> str:
    """One line of at most 200 characters, URLs without credentials or query string."""
    line = " ".join(_URL.sub(r"\1\2", text).split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 1] + "…"


def _aiohttp_errors(exc: BaseException) -> list[aiohttp.ClientError]:
    """aiohttp's own errors in the chain. The httpx-aiohttp transport re-raises them under
    coarse httpx types (a refused connection or a read timeout as ``ConnectTimeout``), so
    when one is there it, not the httpx type, says what happened."""
    return [c for c in _causes(exc) if isinstance(c, aiohttp.ClientError)]


def is_timeout(exc: BaseException) -> bool:
    """True when the attempt ended because a timeout expired (in any layer)."""
    if any(isinstance(c, TimeoutError) for c in _causes(exc)):
        return True
    return isinstance(exc, httpx.TimeoutException) and not _aiohttp_errors(exc)


def classify_exception(exc: BaseException) -> Verdict:
    """Judge an attempt that produced no HTTP response.

    Transport problems (timeouts, refused or reset connections, DNS, TLS) are retried: they
    are usually transient. A destination refused by the SSRF policy is given up: retrying the
    same address cannot succeed until an operator changes the policy, and then redelivers.
    """
    if isinstance(exc, DestinationRefused):
        return Verdict("give_up", short_reason(f"destination refused: {exc.reason}"))
    if isinstance(exc, DestinationUnresolvable):
        return Verdict("retry", short_reason(f"DNS lookup failed: {exc}"))
    # The cause chain first: a transport may report a refused or dropped connection under a
    # generic (even a timeout) exception type; the operating system's error says what it was.
    for cause in _causes(exc):
        if isinstance(cause, ConnectionRefusedError):
            return Verdict("retry", "connection refused")
        if isinstance(cause, ConnectionResetError):
            return Verdict("retry", "connection reset by the receiver")
        if isinstance(cause, ssl.SSLError):
            return Verdict("retry", short_reason(f"TLS failed: {cause}"))
        if isinstance(cause, aiohttp.ServerDisconnectedError):
            return Verdict("retry", "receiver closed the connection without an answer")
        if isinstance(cause, aiohttp.ClientResponseError):
            # Its text names the request URL (query string included): use the message only.
            return Verdict(
                "retry", short_reason(f"receiver broke the HTTP protocol: {cause.message}")
            )
    if is_timeout(exc):
        seconds = _timeout_seconds(exc) if isinstance(exc, httpx.TimeoutException) else None
        from_aiohttp = _aiohttp_errors(exc)
        connecting = (
            any(isinstance(c, aiohttp.ConnectionTimeoutError) for c in from_aiohttp)
            if from_aiohttp
            else isinstance(exc, httpx.ConnectTimeout)
        )
        reason = "timed out connecting" if connecting else "timed out"
        after = f" after {seconds} s" if seconds is not None else ""
        return Verdict("retry", reason + after)
    text = str(exc)
    if "Connection refused" in text or "Errno 111" in text:
        return Verdict("retry", "connection refused")
    if isinstance(exc, httpx.RemoteProtocolError):
        return Verdict("retry", short_reason(f"receiver broke the HTTP protocol: {text}"))
    if isinstance(exc, httpx.ConnectError):
        return Verdict("retry", short_reason(f"could not connect: {text}"))
    return Verdict(
        "retry", short_reason(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
    )


def next_attempt_delay(
    policy: RetryPolicy,
    retries_done: int,
    verdict: Verdict,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt, or None when there is none.

    None after success, after give_up, and once ``policy.max_retries`` retries are done.
    When the receiver sent Retry-After we wait exactly that long (capped by
    ``policy.retry_after_cap``, no jitter), even when it is shorter than the schedule: the
    receiver knows its own recovery better than our guess, and ``max_retries`` still bounds
    the total. Otherwise the schedule with jitter applies.
    """
    if verdict.kind != "retry" or retries_done >= policy.max_retries:
        return None
    if verdict.retry_after is not None:
        return min(max(0.0, verdict.retry_after), policy.retry_after_cap)
    return policy.delay_for(retries_done + 1, rng)
