"""Fairness between receivers: cap requests in flight per origin, back off failing origins.

Origins are known by their tag (see :func:`netpulse.webhooks.store.origin_tag`), which is how
Redis files their due deliveries. One hanging or dead receiver may only hold ``cap`` requests
at a time and ``max_tasks`` deliveries in this process (in flight or waiting for a slot); the
delivery loop claims no more of its deliveries than :meth:`OriginGate.budget` allows, so the
rest wait in Redis, untouched, while other origins go ahead. After ``threshold`` consecutive
failed attempts an origin is backed off for ``backoff`` seconds (its deliveries stay pending,
never dropped). State is per delivery process.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from netpulse.webhooks.store import origin_of

__all__ = ["OriginGate", "OriginState", "origin_of"]


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
        #: When an origin that was at its task limit falls back to this many tasks, the
        #: delivery loop is told to claim again (in batches, not one per finished delivery).
        self.low_water = self.max_tasks // 2
        self._origins: dict[str, OriginState] = {}

    def state(self, origin: str) -> OriginState:
        state = self._origins.get(origin)
        if state is None:
            state = self._origins[origin] = OriginState(self.cap)
        return state

    def budget(self, origin: str, now: float | None = None) -> int:
        """How many more deliveries to ``origin`` this process may take on now (0: none)."""
        state = self.state(origin)
        if state.blocked_until > (time.time() if now is None else now):
            return 0
        return max(self.max_tasks - state.tasks, 0)

    def blocked_until(self, origin: str) -> float:
        """Unix time the origin's back-off ends (0 when it is not backed off)."""
        return self.state(origin).blocked_until

    def reserve(self, origin: str) -> None:
        """Count a delivery for ``origin`` now (synchronously, as it is claimed)."""
        self.state(origin).tasks += 1

    def release(self, origin: str) -> bool:
        """Uncount a finished delivery; True when the origin just fell to its low-water mark
        (the loop may claim a new batch for it)."""
        state = self.state(origin)
        state.tasks -= 1
        return state.tasks == self.low_water

    def slot(self, origin: str) -> asyncio.Semaphore:
        """One of the origin's in-flight slots: ``async with gate.slot(origin): ...``."""
        return self.state(origin).slots

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
