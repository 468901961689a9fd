"""Find, read and cancel jobs in RQ's queues and registries.

The routes of ``/jobs`` call these and only shape replies; every refusal is a
:mod:`netpulse.errors` exception, which ``api/errors.py`` turns into its status.
"""

from __future__ import annotations

import logging

from redis import Redis
from rq import Queue
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import JOB_ID_PATTERN, Job, JobStatus
from rq.rate_limit import RateLimitRegistry

from netpulse.errors import Conflict, NotFound, Unprocessable
from netpulse.nodes.directory import node_queue
from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS
from netpulse.worker.callbacks import record_canceled
from netpulse.worker.job_end import publish_job_end

log = logging.getLogger(__name__)

FINAL_STATUSES = frozenset(
    {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
)
#: Every status a job can be listed by (``GET /jobs?status=``).
STATUS_VALUES = [s.value for s in JobStatus]
#: Jobs are read from Redis this many at a time, so a small ``limit`` reads little.
FETCH_CHUNK = 200
#: Longest job id looked up; ids are UUIDs, and RQ allows only letters, digits, ``_`` and ``-``.
MAX_JOB_ID_LENGTH = 128


class JobNotFound(NotFound):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r} (unknown or expired)")


class JobUnreadable(Unprocessable):
    """The job is stored in a form this server cannot read or show."""

    def __init__(self, job_id: str, exc: Exception) -> None:
        super().__init__(
            f"job {job_id} is stored in a form this server cannot show ({type(exc).__name__}); "
            "it was written corrupted or by an incompatible version"
        )


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


def load_job(conn: Redis, job_id: str) -> Job:
    """The job; JobNotFound when there is none, JobUnreadable when it cannot be read."""
    try:
        job = fetch_job(conn, job_id)
    except REDIS_OUTAGE_ERRORS:
        raise
    except Exception as exc:
        log.warning("job %s cannot be read (%s: %s)", job_id, type(exc).__name__, exc)
        raise JobUnreadable(job_id, exc) from None
    if job is None:
        raise JobNotFound(job_id)
    return job


def _queue_names(conn: Redis, queue: str | None) -> list[str]:
    return [queue] if queue else [q.name for q in Queue.all(connection=conn)]


def _job_ids(conn: Redis, queue_name: str, wanted: str | None) -> list[str]:
    """The queue's job ids, registry by registry; ended jobs newest first (their
    registries are ordered by expiry), so that a ``limit`` keeps the recent ones."""
    queue = Queue(queue_name, connection=conn)
    registries = {
        JobStatus.QUEUED.value: lambda: queue.get_job_ids(),
        JobStatus.STARTED.value: lambda: queue.started_job_registry.get_job_ids(),
        JobStatus.FINISHED.value: lambda: queue.finished_job_registry.get_job_ids(desc=True),
        JobStatus.FAILED.value: lambda: queue.failed_job_registry.get_job_ids(desc=True),
        JobStatus.DEFERRED.value: lambda: queue.deferred_job_registry.get_job_ids(),
        JobStatus.SCHEDULED.value: lambda: queue.scheduled_job_registry.get_job_ids(),
        JobStatus.CANCELED.value: lambda: queue.canceled_job_registry.get_job_ids(desc=True),
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


def find_jobs(
    conn: Redis,
    status_filter: str | None,
    queue: str | None,
    host: str | None,
    limit: int,
    node: str | None = None,
) -> list[Job]:
    """Up to ``limit`` jobs, registry by registry, filtered by status, queue, worker node
    (the jobs of its queue, ``NodeQ_<node>``) and device host.

    A job waiting for its device's slot (RQ's ``rate_limited``) counts as ``queued``.
    """
    found: list[Job] = []
    waiting = _waiting_ids(conn) if status_filter in (None, JobStatus.QUEUED.value) else []
    names = _queue_names(conn, queue)
    if node is not None:
        names = [n for n in names if n == node_queue(node)] if queue else [node_queue(node)]
    for name in names:
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


def cancel(conn: Redis, job: Job) -> None:
    """Cancel a waiting job, or stop a running one (RQ's stop command); Conflict when the
    job already ended."""
    state = job.get_status(refresh=True)
    if state in FINAL_STATUSES:
        raise Conflict(
            f"job {job.id} already ended ({getattr(state, 'value', state)}); nothing to cancel"
        )
    if state == JobStatus.STARTED:
        try:
            send_stop_job_command(conn, job.id)
        except InvalidJobOperation as exc:
            raise Conflict(str(exc)) from None
        return
    cancel_waiting(conn, job)


def cancel_waiting(conn: Redis, job: Job) -> None:
    """Cancel a job that has not started; it still gets its one final webhook event."""
    job.cancel()
    record_canceled(job, conn)
    publish_job_end(conn, job.id)


def cancel_queued(conn: Redis, queue: str | None, host: str | None) -> list[str]:
    """Cancel every queued job (optionally of one queue or device host); their ids."""
    cancelled = []
    for job in find_jobs(conn, JobStatus.QUEUED.value, queue, host, limit=100000):
        cancel_waiting(conn, job)
        cancelled.append(job.id)
    return cancelled
