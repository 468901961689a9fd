"""Ending background asyncio tasks at shutdown without trusting cancellation alone.

redis-py's asyncio client can swallow a cancellation: a task cancelled while a command is in
flight may see the command complete instead of ``CancelledError`` (observed with redis-py 8.2
under CPU load: the delivery service's heartbeat went on beating for the rest of the test and
its process never stopped). A loop that talks to Redis therefore also watches a stop event,
and whoever ends it waits a bounded time, so one swallowed cancellation costs at most one
iteration, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

#: How long :func:`end_tasks` waits for cancelled tasks before giving up on them.
END_TIMEOUT_S = 5.0


async def wait_or_timeout(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` have passed; whether it is set. The pause
    of a loop that must end as soon as it is asked to (a stop event) or woken early."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


async def end_tasks(
    tasks: Iterable[asyncio.Task[None]], what: str, timeout: float = END_TIMEOUT_S
) -> None:
    """Cancel ``tasks`` and wait up to ``timeout`` for them; log any that would not end.

    The caller has already set the stop event those tasks watch, so a task whose cancellation
    was swallowed still ends at its next check. One that does not is left behind (it dies
    with its event loop) rather than holding the shutdown forever.
    """
    tasks = list(tasks)
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    still: set[asyncio.Task[None]] = set()
    if pending:
        _, still = await asyncio.wait(pending, timeout=timeout)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error(
                "%s: background task %s failed before it ended",
                what,
                task.get_name(),
                exc_info=task.exception(),
            )
    for task in still:
        log.error(
            "%s: background task %s did not end within %g s of being cancelled; left behind",
            what,
            task.get_name(),
            timeout,
        )
