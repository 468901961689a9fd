"""`/jobs`: read, list, wait for and cancel jobs; a job's webhook deliveries.

Lookups and cancels are ``netpulse.dispatch.jobs``'s; this module parses and shapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from redis import Redis

from netpulse.api.auth import needs
from netpulse.api.deps import base_url, get_redis
from netpulse.api.views import listed, show  # shared with the dashboard (netpulse/api/ui)
from netpulse.dispatch import jobs
from netpulse.errors import InvalidRequest
from netpulse.models.job import JobInResponse
from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS
from netpulse.security.api_keys import Scope
from netpulse.webhooks import deliveries

log = logging.getLogger(__name__)

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("/{job_id}", response_model=JobInResponse, dependencies=[needs(Scope.READ)])
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
        job = await run_in_threadpool(jobs.load_job, conn, job_id)
        if future is not None and job.get_status(refresh=False) not in jobs.FINAL_STATUSES:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(future), timeout=wait)
            job = await run_in_threadpool(jobs.load_job, conn, job_id)
        try:
            return await run_in_threadpool(show, job, base_url(request))
        except REDIS_OUTAGE_ERRORS:
            raise
        except Exception as exc:
            log.warning("job %s cannot be shown (%s: %s)", job_id, type(exc).__name__, exc)
            raise jobs.JobUnreadable(job_id, exc) from None
    finally:
        if future is not None:
            waiter.forget(job_id, future)


@router.get("", response_model=list[JobInResponse], dependencies=[needs(Scope.READ)])
def list_jobs(
    status_filter: str | None = Query(
        None, alias="status", json_schema_extra={"enum": jobs.STATUS_VALUES}
    ),
    queue: str | None = None,
    node: str | None = None,
    host: str | None = None,
    limit: int = Query(100, ge=1, le=10000),
    conn: Redis = Depends(get_redis),
    request: Request = None,  # type: ignore[assignment]
) -> list[JobInResponse]:
    """Jobs, newest registries first, filtered by status, queue, worker node and host."""
    if status_filter is not None and status_filter not in jobs.STATUS_VALUES:
        raise InvalidRequest(
            f"unknown status {status_filter!r}; valid: {', '.join(jobs.STATUS_VALUES)}"
        )
    found = jobs.find_jobs(conn, status_filter, queue, host, limit, node=node)
    return listed(found, base_url(request))


@router.delete("/{job_id}", dependencies=[needs(Scope.EXEC)])
def delete_job(job_id: str, conn: Redis = Depends(get_redis)) -> dict[str, str]:
    jobs.cancel(conn, jobs.load_job(conn, job_id))
    return {"id": job_id}


@router.delete("", dependencies=[needs(Scope.EXEC)])
def delete_jobs(
    queue: str | None = None,
    host: str | None = None,
    conn: Redis = Depends(get_redis),
) -> list[str]:
    """Cancel every queued job (optionally of one queue or device host)."""
    return jobs.cancel_queued(conn, queue, host)


@router.get("/{job_id}/webhook-deliveries", dependencies=[needs(Scope.READ)])
def job_deliveries(job_id: str, conn: Redis = Depends(get_redis)) -> list[dict[str, Any]]:
    """Every webhook delivery of the job, with its attempt log."""
    if not jobs.valid_job_id(job_id):
        raise jobs.JobNotFound(job_id)
    found = deliveries.for_job(conn, job_id)
    if not found and jobs.fetch_job(conn, job_id) is None:
        raise jobs.JobNotFound(job_id)
    return found
