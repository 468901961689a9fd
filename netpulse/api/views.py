"""Read RQ jobs back as the contract's `JobInResponse`.

Shaping only: finding and loading jobs is ``netpulse.dispatch.jobs``'s.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from rq.job import Job, JobStatus

from netpulse.models.job import (
    DriverExecutionResult,
    JobError,
    JobErrorType,
    JobInResponse,
    JobResult,
    ResultType,
)
from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS

log = logging.getLogger(__name__)


def error_from_exc_string(exc_string: str | None) -> JobError:
    """Best-effort error for a failure RQ only kept as a traceback string (no callback ran
    and no error was stored in the job's meta)."""
    lines = [line for line in (exc_string or "").strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "the job failed"
    if "Work-horse terminated unexpectedly" in (exc_string or ""):
        return JobError(type=JobErrorType.WORKER_KILLED, message=last)
    if "stopped" in last.lower():
        return JobError(type=JobErrorType.STOPPED, message=last)
    return JobError(type=JobErrorType.EXCEPTION, message=last)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 6)


def job_result(job: Job, status: str, base_url: str = "") -> JobResult | None:
    """The `result` object for a job in a final state (None while it is not final).

    ``base_url`` makes download links absolute, as clients fetch them as given.
    """
    if status == JobStatus.FINISHED:
        retval = job.return_value()
        items = [DriverExecutionResult.model_validate(r) for r in retval or []]
        for item in items:
            if item.download_url and item.download_url.startswith("/"):
                item.download_url = base_url + item.download_url
        return JobResult(type=ResultType.SUCCESSFUL, retval=items)
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        error = job.meta.get("error")
        if error is None:
            if status == JobStatus.CANCELED:
                error = {
                    "type": JobErrorType.CANCELED,
                    "message": "the job was canceled before it ran",
                }
            else:
                latest = job.latest_result()
                exc_string = latest.exc_string if latest is not None else None
                error = error_from_exc_string(exc_string).model_dump()
        kind = ResultType.FAILED if status == JobStatus.FAILED else ResultType.STOPPED
        return JobResult(type=kind, retval=None, error=JobError.model_validate(error))
    return None


def to_response(job: Job, base_url: str = "") -> JobInResponse:
    state = job.get_status(refresh=False) or JobStatus.QUEUED
    status = state.value if isinstance(state, JobStatus) else str(state)
    if status == JobStatus.RATE_LIMITED.value:
        # Waiting for its device's earlier jobs: queued, to clients.
        status = JobStatus.QUEUED.value
    meta: dict[str, Any] = job.meta or {}
    return JobInResponse(
        id=job.id,
        status=status,
        created_at=job.created_at,
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        queue=job.origin,
        worker=job.worker_name,
        result=job_result(job, status, base_url),
        task_id=meta.get("task_id"),
        device_name=meta.get("device_name"),
        command=meta.get("command"),
        duration=_seconds(job.started_at, job.ended_at),
        notices=meta.get("notices"),
        submitted_by=meta.get("submitted_by"),
        queue_time=_seconds(job.enqueued_at, job.started_at),
    )


def show(job: Job, base_url: str = "") -> JobInResponse:
    """The job as the API shows it; raises what keeps it from being shown."""
    response = to_response(job, base_url)
    response.model_dump_json()  # text that cannot be encoded fails here, not in the reply
    return response


def listed(found: list[Job], base_url: str = "") -> list[JobInResponse]:
    """The jobs that can be shown; one that cannot is logged and left out (one bad record
    never fails a listing: ``GET /jobs`` and the dashboard's jobs page)."""
    shown = []
    for job in found:
        try:
            shown.append(show(job, base_url))
        except REDIS_OUTAGE_ERRORS:
            raise
        except Exception as exc:
            log.warning(
                "job %s cannot be shown (%s: %s); left out", job.id, type(exc).__name__, exc
            )
    return shown
