"""`/jobs`: read, list, wait for and cancel jobs; a job's webhook deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from redis import Redis
from rq import Queue
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.rate_limit import RateLimitRegistry

from netpulse.api.deps import base_url, get_redis
from netpulse.dispatch.views import FINAL_STATUSES, fetch_job, to_response, valid_job_id
from netpulse.keys import JOB_DONE_CHANNEL
from netpulse.models.job import JobInResponse
from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS
from netpulse.webhooks import deliveries
from netpulse.worker.callbacks import record_canceled

log = logging.getLogger(__name__)

router = APIRouter(prefix="/jobs", tags=["jobs"])

STATUS_VALUES = [s.value for s in JobStatus]
#: Jobs are read from Redis this many at a time, so a small `limit` reads little.
FETCH_CHUNK = 200


def _not_found(job_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no job {job_id!r} (unknown or expired)")


def _unreadable(job_id: str, exc: Exception) -> HTTPException:
    log.warning("job %s cannot be read or shown (%s: %s)", job_id, type(exc).__name__, exc)
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        f"job {job_id} is stored in a form this server cannot show ({type(exc).__name__}); "
        "it was written corrupted or by an incompatible version",
    )


def _load(conn: Redis, job_id: str) -> Job:
    try:
        job = fetch_job(conn, job_id)
    except REDIS_OUTAGE_ERRORS:
        raise
    except Exception as exc:
        raise _unreadable(job_id, exc) from None
    if job is None:
        raise _not_found(job_id)
    return job


@router.get("/{job_id}", response_model=JobInResponse)
async def get_job(
    job_id: str,
    request: Request,
    wait: float = Query(0, ge=0, le=60, description="Seconds to wait for a final state."),
    conn: Redis = Depends(get_redis),
) -> JobInResponse:
    """The job; with `wait`, returns as soon as it ends (or when the wait is over)."""
    waiter = request.app.state.waiter
    future = waiter.register(job_id) if wait > 0 else None
    try:
        job = await run_in_threadpool(_load, conn, job_id)
        if future is not None and job.get_status(refresh=False) not in FINAL_STATUSES:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(future), timeout=wait)
            job = await run_in_threadpool(_load, conn, job_id)
        try:
            return await run_in_threadpool(_show, job, base_url(request))
        except REDIS_OUTAGE_ERRORS:
            raise
        except Exception as exc:
            raise _unreadable(job_id, exc) from None
    finally:
        if future is not None:
            waiter.forget(job_id, future)


def _queue_names(conn: Redis, queue: str | None) -> list[str]:
    return [queue] if queue else [q.name for q in Queue.all(connection=conn)]


def _job_ids(conn: Redis, queue_name: str, wanted: str | None) -> list[str]:
    queue = Queue(queue_name, connection=conn)
    registries = {
        JobStatus.QUEUED.value: lambda: queue.get_job_ids(),
        JobStatus.STARTED.value: lambda: queue.started_job_registry.get_job_ids(),
        JobStatus.FINISHED.value: lambda: queue.finished_job_registry.get_job_ids(),
        JobStatus.FAILED.value: lambda: queue.failed_job_registry.get_job_ids(),
        JobStatus.DEFERRED.value: lambda: queue.deferred_job_registry.get_job_ids(),
        JobStatus.SCHEDULED.value: lambda: queue.scheduled_job_registry.get_job_ids(),
        JobStatus.CANCELED.value: lambda: queue.canceled_job_registry.get_job_ids(),
    }
    ids: list[str] = []
    for name, read in registries.items():
        if (
            wanted is None
            or wanted == name
            or (wanted == JobStatus.STOPPED.value and name == JobStatus.FAILED.value)
        ):
            ids.extend(read())
    return ids


def _waiting_ids(conn: Redis) -> list[str]:
    """Jobs held back by a per-device limit (RQ's rate-limited jobs): queued, to clients."""
    ids: list[str] = []
    for registry in RateLimitRegistry.all(conn):
        ids.extend(registry.get_rate_limited_job_ids())
    return ids


def _fetch_readable(conn: Redis, ids: list[str]) -> list[Job | None]:
    """The jobs of ``ids``, None for those gone or stored in a form this server cannot read
    (corrupted, or written by an incompatible version): one such job must not fail a whole
    listing. Fetched in one round trip; one by one only when that fails."""
    try:
        return list(Job.fetch_many(ids, connection=conn))
    except REDIS_OUTAGE_ERRORS:
        raise
    except Exception:
        jobs: list[Job | None] = []
        for job_id in ids:
            try:
                jobs.append(Job.fetch(job_id, connection=conn))
            except NoSuchJobError:
                jobs.append(None)
            except REDIS_OUTAGE_ERRORS:
                raise
            except Exception as exc:
                log.warning(
                    "job %s cannot be read (%s: %s); left out", job_id, type(exc).__name__, exc
                )
                jobs.append(None)
        return jobs


def _show(job: Job, base: str) -> JobInResponse:
    """The job as the API shows it; raises what keeps it from being shown."""
    response = to_response(job, base)
    response.model_dump_json()  # text that cannot be encoded fails here, not in the reply
    return response


def _listed(jobs: list[Job], base: str) -> list[JobInResponse]:
    """The jobs that can be shown; one that cannot is logged and left out."""
    shown = []
    for job in jobs:
        try:
            shown.append(_show(job, base))
        except REDIS_OUTAGE_ERRORS:
            raise
        except Exception as exc:
            log.warning(
                "job %s cannot be shown (%s: %s); left out", job.id, type(exc).__name__, exc
            )
    return shown


def find_jobs(
    conn: Redis,
    status_filter: str | None,
    queue: str | None,
    host: str | None,
    limit: int,
) -> list[Job]:
    found: list[Job] = []
    waiting = _waiting_ids(conn) if status_filter in (None, JobStatus.QUEUED.value) else []
    for name in _queue_names(conn, queue):
        ids = list(dict.fromkeys(_job_ids(conn, name, status_filter)))
        ids += [i for i in waiting if i not in ids]
        for start in range(0, len(ids), FETCH_CHUNK):
            for job in _fetch_readable(conn, ids[start : start + FETCH_CHUNK]):
                if job is None:
                    continue
                if host and job.meta.get("host") != host:
                    continue
                if job.origin != name:
                    continue
                state = job.get_status(refresh=False)
                if state == JobStatus.RATE_LIMITED:
                    state = JobStatus.QUEUED
                if status_filter and state != status_filter:
                    continue
                found.append(job)
                if len(found) >= limit:
                    return found
    return found


@router.get("", response_model=list[JobInResponse])
def list_jobs(
    status_filter: str | None = Query(
        None, alias="status", json_schema_extra={"enum": STATUS_VALUES}
    ),
    queue: str | None = None,
    node: str | None = None,
    host: str | None = None,
    limit: int = Query(100, ge=1, le=10000),
    conn: Redis = Depends(get_redis),
    request: Request = None,  # type: ignore[assignment]
) -> list[JobInResponse]:
    """Jobs, newest registries first, filtered by status, queue and device host."""
    if status_filter is not None and status_filter not in STATUS_VALUES:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"unknown status {status_filter!r}; valid: {', '.join(STATUS_VALUES)}",
        )
    jobs = find_jobs(conn, status_filter, queue, host, limit)
    base = base_url(request)
    return _listed(jobs, base)


def cancel(conn: Redis, job: Job) -> None:
    """Cancel a waiting job, or stop a running one (RQ's stop command)."""
    state = job.get_status(refresh=True)
    if state in FINAL_STATUSES:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"job {job.id} already ended ({getattr(state, 'value', state)}); nothing to cancel",
        )
    if state == JobStatus.STARTED:
        try:
            send_stop_job_command(conn, job.id)
        except InvalidJobOperation as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        return
    _cancel_waiting(conn, job)


def _cancel_waiting(conn: Redis, job: Job) -> None:
    """Cancel a job that has not started; it still gets its one final webhook event."""
    job.cancel()
    record_canceled(job, conn)
    conn.publish(JOB_DONE_CHANNEL, job.id)


@router.delete("/{job_id}")
def delete_job(job_id: str, conn: Redis = Depends(get_redis)) -> dict[str, str]:
    cancel(conn, _load(conn, job_id))
    return {"id": job_id}


@router.delete("")
def delete_jobs(
    queue: str | None = None,
    host: str | None = None,
    conn: Redis = Depends(get_redis),
) -> list[str]:
    """Cancel every queued job (optionally of one queue or device host)."""
    cancelled = []
    for job in find_jobs(conn, JobStatus.QUEUED.value, queue, host, limit=100000):
        _cancel_waiting(conn, job)
        cancelled.append(job.id)
    return cancelled


@router.get("/{job_id}/webhook-deliveries")
def job_deliveries(job_id: str, conn: Redis = Depends(get_redis)) -> list[dict[str, Any]]:
    """Every webhook delivery of the job, with its attempt log."""
    if not valid_job_id(job_id):
        raise _not_found(job_id)
    found = deliveries.for_job(conn, job_id)
    if not found and fetch_job(conn, job_id) is None:
        raise _not_found(job_id)
    return found
