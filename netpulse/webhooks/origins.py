"""Fairness between receivers: cap requests in flight per origin, back off failing origins.

One hanging or dead receiver may only hold ``cap`` requests at a time and ``max_tasks``
deliveries in this process (in flight or waiting for a slot); beyond that its deliveries are
deferred in Redis. After ``threshold`` consecutive failed attempts an origin is backed off for
``backoff`` seconds (deliveries deferred, never dropped). State is per delivery process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: How long a delivery to an origin that is at its task limit waits before it is tried again.
BUSY_RETRY_SECONDS = 0.25


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


@dataclass
class OriginState:
    cap: int
    tasks: int = 0
    consecutive_failures: int = 0
    blocked_until: float = 0.0
    slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.cap)


class OriginGate:
    def __init__(self, cap: int, threshold: int, backoff: float, max_tasks: int | None = None):
        self.cap = cap
        self.threshold = threshold
        self.backoff = backoff
        self.max_tasks = max(max_tasks if max_tasks is not None else cap * 4, cap)
        self._origins: dict[str, OriginState] = {}

    def state(self, origin: str) -> OriginState:
        state = self._origins.get(origin)
        if state is None:
            state = self._origins[origin] = OriginState(self.cap)
        return state

    def deferral(self, origin: str, now: float | None = None) -> float | None:
        """Seconds to defer a delivery to ``origin`` now, or None when it may go ahead.

        Synchronous, and followed by :meth:`slot` with no ``await`` in between, so deliveries
        started in one batch cannot all pass the check before any of them is counted.
        """
        now = time.time() if now is None else now
        state = self.state(origin)
        if state.blocked_until > now:
            return state.blocked_until - now
        if state.tasks >= self.max_tasks:
            return BUSY_RETRY_SECONDS
        return None

    def reserve(self, origin: str) -> None:
        """Count a delivery for ``origin`` now (synchronously), before its task runs."""
        self.state(origin).tasks += 1

    @contextlib.asynccontextmanager
    async def slot(self, origin: str, reserved: bool = False) -> AsyncIterator[OriginState]:
        """Hold one of the origin's in-flight slots (waiting for one if all are taken).

        ``reserved``: the delivery was already counted by :meth:`reserve`.
        """
        state = self.state(origin)
        if not reserved:
            state.tasks += 1
        try:
            async with state.slots:
                yield state
        finally:
            state.tasks -= 1

    def record(self, origin: str, succeeded: bool, counts_as_failure: bool) -> None:
        """Count an attempt's outcome; enough failures in a row back the origin off."""
        state = self.state(origin)
        if succeeded:
            state.consecutive_failures = 0
            state.blocked_until = 0.0
        elif counts_as_failure:
            state.consecutive_failures += 1
            if state.consecutive_failures >= self.threshold:
                state.blocked_until = time.time() + self.backoff
                state.consecutive_failures = 0
