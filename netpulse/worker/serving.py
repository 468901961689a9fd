"""Keep an RQ worker serving its queues through Redis outages.

RQ's work loop retries only the blocking dequeue; a Redis error anywhere else (the suspension
check, maintenance, a heartbeat, registering birth or death) ends ``Worker.work()``. A worker
node's job threads and the FIFO pool's worker processes therefore run RQ's loop inside this
one: when ``work()`` ends without a stop request, wait until Redis answers (capped back-off,
one log line per outage), clear the dead worker's registration, and start a fresh worker
under the same name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from redis import Redis
from rq.worker import BaseWorker

from netpulse.runtime.outage import (
    REDIS_OUTAGE_ERRORS,
    Backoff,
    OutageLog,
    is_outage,
    quiet_rq_outages,
)

log = logging.getLogger(__name__)

#: A worker loop that ran this long before it ended starts again without waiting.
STABLE_SECONDS = 30.0

W = TypeVar("W", bound=BaseWorker)


def clear_registration(conn: Redis, worker: BaseWorker) -> None:
    """Forget a worker whose loop ended without registering its death (Redis was away), so
    its successor of the same name may register (RQ refuses a name that looks alive)."""
    from rq import worker_registration

    with conn.pipeline() as pipe:
        worker_registration.unregister(worker, pipe)
        pipe.delete(worker.key)
        pipe.execute()


def serve(
    make_worker: Callable[[], W],
    conn: Redis,
    stopping: Callable[[], bool],
    on_worker: Callable[[W], None] = lambda _: None,
    between_loops: Callable[[], None] = lambda: None,
    **work_kwargs: Any,
) -> None:
    """Run ``make_worker().work(**work_kwargs)`` again and again until ``stopping()`` or the
    worker itself was asked to stop (a signal, RQ's shutdown command, burst mode done).

    ``between_loops`` runs each time RQ's loop has ended: a worker process puts back signal
    handlers of its own there, since RQ's ask Redis for the worker's state, which fails while
    Redis is away and would turn a stop request into an error."""
    quiet_rq_outages()
    worker = make_worker()
    outage = OutageLog(log, f"worker {worker.name}")
    backoff = Backoff()

    def asked_to_stop() -> bool:
        # RQ stops an idle worker by raising out of its loop without setting
        # ``_stop_requested``; NetPulse's workers note the signal in ``stop_signalled``.
        return (
            stopping()
            or bool(getattr(worker, "_stop_requested", False))
            or bool(getattr(worker, "stop_signalled", False))
        )

    while True:
        if asked_to_stop():  # a signal that came before RQ's loop started
            return
        on_worker(worker)
        started = time.monotonic()
        ended_by: BaseException | None = None
        try:
            worker.work(**work_kwargs)
        except REDIS_OUTAGE_ERRORS as exc:
            ended_by = exc
        except Exception as exc:
            if not is_outage(exc):
                log.exception("worker %s: its loop failed; starting it again", worker.name)
            ended_by = exc
        between_loops()
        if asked_to_stop():
            return
        if ended_by is None and work_kwargs.get("burst"):
            return
        if ended_by is not None and is_outage(ended_by):
            outage.failed(ended_by)
        elif time.monotonic() - started < STABLE_SECONDS:
            backoff.wait()  # ended quickly for another reason: do not spin
        else:
            backoff.reset()
        while not asked_to_stop():
            try:
                conn.ping()
                clear_registration(conn, worker)
                break
            except REDIS_OUTAGE_ERRORS as exc:
                outage.failed(exc)
                backoff.wait()
        if asked_to_stop():
            return
        outage.recovered()
        worker = make_worker()
