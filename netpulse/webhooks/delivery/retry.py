"""Retry policy for webhook deliveries: pure functions, no I/O, no clock unless given.

The flow is: one attempt -> :func:`classify_response` or :func:`classify_exception` gives an
:class:`~netpulse.webhooks.callers.AttemptOutcome` -> :func:`next_attempt_delay` says how
long to wait before the next attempt, or ``None`` to stop. Keeping these pure lets the
delivery service, callers and the tests share one definition of "what counts as delivered".
What a failed request looked like (the transport's error table) is
:func:`netpulse.net.client.describe_failure`'s; this module only decides what follows.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from http import HTTPStatus

import aiohttp
import httpx

from netpulse.net.client import describe_failure
from netpulse.net.ssrf import DestinationRefused, DestinationUnresolvable
from netpulse.webhooks.callers import AttemptOutcome, Verdict

#: What sending through ``netpulse.net.client`` may raise when a request gets no answer.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.HTTPError,
    aiohttp.ClientError,
    OSError,
    DestinationRefused,
    DestinationUnresolvable,
)

# Seconds to wait before retry 1, 2, ... after the immediate first attempt: 5 s, 5 min,
# 30 min, 2 h, 5 h, 10 h, 10 h, as Standard Webhooks suggests (about 27 h in total).
DEFAULT_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
DEFAULT_RETRY_AFTER_CAP = 3600.0

# Statuses whose Retry-After we honour: the receiver is asking us to slow down.
SLOW_DOWN_STATUSES = frozenset({429, 502, 503, 504})

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
) -> AttemptOutcome:
    """Judge an HTTP response by Standard Webhooks rules.

    2xx is success. 410 Gone means the receiver wants no more events: give up. 3xx is a
    failure because redirects are never followed (they could lead to an unchecked address).
    429/502/503/504 carrying Retry-After give ``retry_after`` clamped to
    ``[0, retry_after_cap]``. Everything else is retried.
    """
    if 200 <= status_code <= 299:
        return _judged(Verdict.SUCCESS, f"receiver answered {_status_text(status_code)}")
    if status_code == 410:
        return _judged(Verdict.GIVE_UP, "receiver answered 410 Gone")
    if 300 <= status_code <= 399:
        return _judged(Verdict.RETRY, "redirect not followed (3xx is a failure)")
    reason = f"receiver answered {_status_text(status_code)}"
    if status_code in SLOW_DOWN_STATUSES:
        raw = _header(headers, "retry-after")
        if raw is not None:
            wait = parse_retry_after(raw, now)
            if wait is None:
                return _judged(Verdict.RETRY, f"{reason} (unusable Retry-After {raw!r} ignored)")
            wait = min(wait, max(0.0, retry_after_cap))
            return _judged(Verdict.RETRY, f"{reason}, Retry-After {wait:g} s", retry_after=wait)
    return _judged(Verdict.RETRY, reason)


def _judged(verdict: Verdict, reason: str, retry_after: float | None = None) -> AttemptOutcome:
    return AttemptOutcome(verdict, reason=reason, retry_after=retry_after)


def classify_exception(exc: BaseException) -> AttemptOutcome:
    """Judge an attempt that produced no HTTP response.

    Transport problems (timeouts, refused or reset connections, DNS, TLS) are retried: they
    are usually transient. A destination refused by the SSRF policy is given up (and marked
    ``refused``): retrying the same address cannot succeed until an operator changes the
    policy, and then redelivers.
    """
    if isinstance(exc, DestinationRefused):
        return AttemptOutcome(Verdict.GIVE_UP, reason=describe_failure(exc), refused=True)
    return AttemptOutcome(Verdict.RETRY, reason=describe_failure(exc))


def next_attempt_delay(
    policy: RetryPolicy,
    retries_done: int,
    outcome: AttemptOutcome,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt, or None when there is none.

    None after success, after give_up, and once ``policy.max_retries`` retries are done.
    When the receiver sent Retry-After we wait exactly that long (capped by
    ``policy.retry_after_cap``, no jitter), even when it is shorter than the schedule: the
    receiver knows its own recovery better than our guess, and ``max_retries`` still bounds
    the total. Otherwise the schedule with jitter applies.
    """
    if outcome.verdict != Verdict.RETRY or retries_done >= policy.max_retries:
        return None
    if outcome.retry_after is not None:
        return min(max(0.0, outcome.retry_after), policy.retry_after_cap)
    return policy.delay_for(retries_done + 1, rng)
