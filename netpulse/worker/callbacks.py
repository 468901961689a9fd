"""RQ callbacks of every device job: record how it ended, and its webhook event.

Attached at enqueue time (``on_success``, ``on_failure``, ``on_stopped``). They take the
original request from ``job.kwargs["req"]``, look the caller up by ``webhook.name`` in the
webhook plugin registry and hand the event to the outbox. They never raise into the job: a
webhook problem is logged as a warning and the job's result stays what it was. The one
exception is Redis being away: then they raise, so that the worker retries the job's whole
outcome once Redis answers (``rq_worker.OutcomeKeeper``) and the event is not lost.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq.job import Job

from netpulse.models.job import JobError, JobErrorType
from netpulse.models.request import ExecutionRequest
from netpulse.runtime.outage import is_outage
from netpulse.webhooks.callers import registry as webhook_callers
from netpulse.webhooks.events import FinalStatus
from netpulse.webhooks.outbox.record import record_final_event
from netpulse.worker.errors import error_from_exception

log = logging.getLogger(__name__)


def _save_error(job: Job, error: JobError) -> JobError:
    """Store the job's error unless one is already known (the first cause is the real one)."""
    known = job.meta.get("error")
    if known:
        return JobError.model_validate(known)
    try:
        job.meta["error"] = error.model_dump()
        job.save_meta()
    except Exception as exc:
        if is_outage(exc):
            job.meta.pop("error", None)  # not stored: the retry must store it
            raise
        log.exception("could not store the error of job %s", job.id)
    return error


def _hand_over(job: Job, conn: Redis, status: FinalStatus, retval: Any, error: JobError | None):
    req = job.kwargs.get("req")
    if not isinstance(req, ExecutionRequest):
        return
    try:
        if req.webhook is not None:
            webhook_callers.get(req.webhook.name)  # the caller must exist to deliver later
        record_final_event(
            conn,
            job_id=job.id,
            req=req,
            status=status,
            meta=job.meta,
            created_at=job.created_at,
            started_at=job.started_at,
            ended_at=job.ended_at or datetime.now(UTC),
            retval=retval,
            error=error,
        )
    except Exception as exc:
        if is_outage(exc):
            raise  # Redis is away: the worker retries the outcome, event included
        log.warning("webhook event for job %s not recorded: %s", job.id, exc, exc_info=True)


def on_job_success(job: Job, connection: Redis, result: Any, *args: Any, **kwargs: Any) -> None:
    """The job returned: its event is ``job.completed``."""
    _hand_over(job, connection, "finished", result, None)


def on_job_failure(job: Job, connection: Redis, exc_type: Any, exc: Any, tb: Any, *a: Any) -> None:
    """The job raised, timed out or was abandoned: its event is ``job.failed``.

    On a worker node a stopped job ends through here too (its session was closed under it):
    ``meta["stop_requested"]`` tells it apart, and its event is ``job.stopped``.
    """
    if job.meta.get("stop_requested"):
        on_job_stopped(job, connection)
        return
    error = _save_error(job, error_from_exception(exc, job.timeout))
    _hand_over(job, connection, "failed", None, error)


def on_job_stopped(job: Job, connection: Redis, *args: Any, **kwargs: Any) -> None:
    """The job was stopped while running: its event is ``job.stopped``."""
    error = JobError(type=JobErrorType.STOPPED, message="the job was stopped while it was running")
    job.meta.pop("error", None)
    error = _save_error(job, error)
    _hand_over(job, connection, "stopped", None, error)


def record_canceled(job: Job, connection: Redis) -> None:
    """The job was cancelled before it ran (no RQ callback runs): record ``job.canceled``."""
    error = _save_error(
        job, JobError(type=JobErrorType.CANCELED, message="the job was canceled before it ran")
    )
    _hand_over(job, connection, "canceled", None, error)


def record_killed(job: Job, connection: Redis, ret_val: int | None) -> None:
    """The OS killed the work-horse (no RQ callback runs): record ``job.failed``."""
    detail = ""
    if ret_val is not None and os.WIFSIGNALED(ret_val):
        detail = f" by signal {os.WTERMSIG(ret_val)}"
    error = JobError(
        type="worker_killed",
        message=f"the process running the job was killed{detail} before it finished",
    )
    try:
        job.refresh()
    except Exception:
        log.exception("could not reload killed job %s", job.id)
    error = _save_error(job, error)
    _hand_over(job, connection, "failed", None, error)
