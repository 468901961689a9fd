"""Read RQ jobs back as the contract's `JobInResponse`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import JOB_ID_PATTERN, Job, JobStatus

from netpulse.models.job import (
    DriverExecutionResult,
    JobError,
    JobInResponse,
    JobResult,
    ResultType,
)
from netpulse.worker.errors import error_from_exc_string

FINAL_STATUSES = {
    JobStatus.FINISHED,
    JobStatus.FAILED,
    JobStatus.STOPPED,
    JobStatus.CANCELED,
}


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
                error = {"type": "canceled", "message": "the job was canceled before it ran"}
            else:
                latest = job.latest_result()
                exc_string = latest.exc_string if latest is not None else None
                error = error_from_exc_string(exc_string).model_dump()
        kind = ResultType.FAILED if status == JobStatus.FAILED else ResultType.STOPPED
        return JobResult(type=kind, retval=None, error=JobError.model_validate(error))
    return None


def to_response(job: Job, base_url: str = "") -> JobInResponse:
    status = job.get_status(refresh=False) or JobStatus.QUEUED
    status = status.value if hasattr(status, "value") else str(status)
    if status == "rate_limited":  # waiting for its device's earlier jobs: queued, to clients
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
        queue_time=_seconds(job.enqueued_at, job.started_at),
    )


#: Longest job id looked up; ids are UUIDs, and RQ allows only letters, digits, ``_`` and ``-``.
MAX_JOB_ID_LENGTH = 128


def valid_job_id(job_id: str) -> bool:
    """Whether ``job_id`` could name a job at all (checked before any Redis key is built)."""
    return len(job_id) <= MAX_JOB_ID_LENGTH and JOB_ID_PATTERN.fullmatch(job_id) is not None


def fetch_job(conn: Redis, job_id: str) -> Job | None:
    """The job, or None when no job has that id (also for an id RQ would refuse outright)."""
    if not valid_job_id(job_id):
        return None
    try:
        return Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return None
