"""Fairness between receivers: cap requests in flight per origin, back off failing origins.

One hanging or dead receiver may only hold ``cap`` requests at a time; after ``threshold``
consecutive failed attempts its deliveries are deferred for ``backoff`` seconds (deferred,
never dropped). State is per delivery process: each process protects its own slots.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


@dataclass
class OriginState:
    in_flight: int = 0
    consecutive_failures: int = 0
    blocked_until: float = 0.0


class OriginGate:
    def __init__(self, cap: int, threshold: int, backoff: float) -> None:
        self.cap = cap
        self.threshold = threshold
        self.backoff = backoff
        self._origins: dict[str, OriginState] = {}

    def state(self, origin: str) -> OriginState:
        return self._origins.setdefault(origin, OriginState())

    def deferral(self, origin: str, now: float | None = None) -> float | None:
        """Seconds to defer a delivery to ``origin`` now, or None when it may go."""
        now = time.time() if now is None else now
        state = self.state(origin)
        if state.blocked_until > now:
            return state.blocked_until - now
        if state.in_flight >= self.cap:
            return 0.25
        return None

    def acquire(self, origin: str) -> None:
        self.state(origin).in_flight += 1

    def release(self, origin: str, succeeded: bool, counts_as_failure: bool) -> None:
        state = self.state(origin)
        state.in_flight = max(state.in_flight - 1, 0)
        if succeeded:
            state.consecutive_failures = 0
            state.blocked_until = 0.0
        elif counts_as_failure:
            state.consecutive_failures += 1
            if state.consecutive_failures >= self.threshold:
                state.blocked_until = time.time() + self.backoff
                state.consecutive_failures = 0
