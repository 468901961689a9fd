"""RQ registries usable outside a process's main thread.

RQ guards job callbacks with ``UnixSignalDeathPenalty`` (SIGALRM), which only works in the main
thread. Worker nodes run RQ in threads, so their abandoned-job cleanup uses RQ's thread-based
``TimerDeathPenalty`` instead; otherwise the failure callback (and the webhook event it records)
would be skipped.
"""

from __future__ import annotations

from rq.registry import StartedJobRegistry
from rq.timeouts import TimerDeathPenalty


class ThreadedStartedJobRegistry(StartedJobRegistry):
    # rq types the attribute as its default, type[UnixSignalDeathPenalty], though it takes any
    # BaseDeathPenalty (its own __init__ override does the same assignment with an ignore).
    death_penalty_class = TimerDeathPenalty  # type: ignore[assignment]
