"""Living through a Redis outage: which errors mean "Redis is away", one log line per outage,
and a capped back-off until it answers again.

Every NetPulse process shares nothing but Redis, so a Redis restart, a Sentinel failover or a
network blip reaches all of them at once. Each process keeps running: it waits with a capped
back-off, logs when the outage starts and when it ends (not once per retry, which would bury
the log in thousands of identical lines), and resumes on its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis.exceptions

#: Errors that mean Redis is unreachable or not (yet) the master, never that a command was
#: wrong: a refused or dropped connection, a timeout, a server still loading its append-only
#: file, and a replica that a failover has not yet promoted (READONLY).
REDIS_OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
)

#: First and longest wait between two attempts to reach Redis (seconds).
BACKOFF_FIRST = 0.25
BACKOFF_CAP = 5.0

T = TypeVar("T")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says that Redis is away."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, REDIS_OUTAGE_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class OutageLog:
    """Says once that Redis went away and once that it came back, for one part of a process."""

    #: A failure this soon after a recovery continues the same outage (no new line): a Redis
    #: that is shutting down or starting answers one command and refuses the next.
    SETTLE_SECONDS = 5.0

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self._since: float | None = None
        self._last_since: float | None = None
        self._recovered_at = float("-inf")
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self._since is not None:
                return
            now = time.monotonic()
            if now - self._recovered_at < self.SETTLE_SECONDS and self._last_since is not None:
                self._since = self._last_since  # the same outage, flapping: said already
                return
            self._since = now
        self.logger.error(
            "%s: Redis is unreachable (%s: %s); retrying until it answers",
            self.what,
            type(exc).__name__,
            exc,
        )

    def recovered(self) -> None:
        with self._lock:
            since, self._since = self._since, None
            if since is not None:
                self._last_since, self._recovered_at = since, time.monotonic()
        if since is not None:
            self.logger.warning(
                "%s: Redis answers again after %.1f s; resuming",
                self.what,
                time.monotonic() - since,
            )


class Backoff:
    """Capped exponential waits: 0.25 s, 0.5 s, 1 s ... 5 s."""

    def __init__(self, first: float = BACKOFF_FIRST, cap: float = BACKOFF_CAP) -> None:
        self.first, self.cap = first, cap
        self.next = first

    def wait(self, stop: threading.Event | None = None) -> bool:
        """Sleep the next delay; True when ``stop`` was set meanwhile."""
        delay, self.next = self.next, min(self.next * 2, self.cap)
        if stop is not None:
            return stop.wait(delay)
        time.sleep(delay)
        return False

    def reset(self) -> None:
        self.next = self.first


def wait_for_redis(
    ping: Callable[[], object], outage: OutageLog, stop: threading.Event | None = None
) -> bool:
    """Block until ``ping()`` succeeds (True) or ``stop`` is set (False)."""
    backoff = Backoff()
    while stop is None or not stop.is_set():
        try:
            ping()
        except REDIS_OUTAGE_ERRORS as exc:
            outage.failed(exc)
            if backoff.wait(stop):
                return False
            continue
        outage.recovered()
        return True
    return False


def retry_through_outage(
    action: Callable[[], T],
    outage: OutageLog,
    stop: Callable[[], bool] = lambda: False,
) -> T:
    """Run ``action`` until it gets through, waiting out Redis outages in between.

    Used where giving up would lose something that cannot be rebuilt: a job's result or its
    final event. Raises the outage error only when ``stop()`` says the process is stopping.
    """
    backoff = Backoff()
    while True:
        try:
            result = action()
        except BaseException as exc:
            if not is_outage(exc) or stop():
                raise
            outage.failed(exc)
            backoff.wait()
            continue
        outage.recovered()
        return result


class QuietRQOutages(logging.Filter):
    """Drops RQ's own per-retry lines about an unreachable Redis.

    RQ logs every reconnection attempt of its dequeue loop, and a traceback when Redis goes
    away elsewhere in its loop; NetPulse's :class:`OutageLog` says the same once per outage.
    """

    PER_RETRY = ("could not connect to Redis instance", "Redis connection timeout")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and is_outage(record.exc_info[1]):
            return False
        message = record.getMessage()
        return not any(text in message for text in self.PER_RETRY)


def quiet_rq_outages() -> None:
    """Install :class:`QuietRQOutages` on RQ's worker logger (once per process)."""
    logger = logging.getLogger("rq.worker")
    if not any(isinstance(f, QuietRQOutages) for f in logger.filters):
        logger.addFilter(QuietRQOutages())
