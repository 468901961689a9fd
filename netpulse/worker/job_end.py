"""Tell the controllers that jobs ended: one publish on ``JOB_DONE_CHANNEL`` per job, and
the job's end to the audit stream in the same pipeline (``netpulse.audit.stream``).

Controllers answering ``GET /jobs/{id}?wait=`` subscribe to the channel (``api/waiter.py``)
and re-read the job when its id arrives. Jobs end in four places, all of which publish
through here: an RQ worker storing the outcome (``rq_worker.JobEndPublisher``), a FIFO pool
failing the jobs of its dead workers (``pool.py``), a node's failover failing the jobs of a
lost node (``nodes/failover.py``), and a cancel (``dispatch/jobs.py``).

It lives in ``worker`` (not ``dispatch``) because the worker side publishes most and sits
below dispatch and nodes in the layering; see docs/architecture.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from redis import Redis
from rq.job import Job

from netpulse.audit import stream as audit_stream
from netpulse.config import get_settings
from netpulse.keys import JOB_DONE_CHANNEL
from netpulse.models.audit import AuditMode
from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS

log = logging.getLogger(__name__)


def publish_job_end(
    conn: Redis,
    job_ids: str | Iterable[str],
    audit_records: dict[str, dict[str, str]] | None = None,
) -> None:
    """Publish the end of ``job_ids`` (their final state is already stored) and add it to
    the audit trail: ``audit_records`` by job id where the caller built one (the worker that
    ran the job, with its output), else a record naming the job.

    A lost publish only delays a waiting request (it re-reads its job when the controller
    subscribes again, and at the end of its wait), so a failure is logged, never raised.
    """
    ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
    if not ids:
        return
    audit = get_settings().audit
    try:
        with conn.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.publish(JOB_DONE_CHANNEL, job_id)
                if audit.mode != AuditMode.NONE:
                    record = (audit_records or {}).get(job_id)
                    audit_stream.add(
                        pipe,
                        record or audit_stream.ended_without_data(job_id),
                        audit.stream_max_len,
                    )
            pipe.execute()
    except REDIS_OUTAGE_ERRORS as exc:
        log.warning(
            "could not publish the end of %d job(s) (%s...): Redis is unreachable (%s)",
            len(ids),
            ids[0],
            exc,
        )
    except Exception:
        log.exception("could not publish the end of %d job(s) (%s...)", len(ids), ids[0])


def finished_audit_record(job: Job) -> dict[str, str] | None:
    """The audit record of a job that just finished on this worker, with its output (RQ
    keeps the job function's return value on the job object after running it)."""
    audit = get_settings().audit
    if audit.mode == AuditMode.NONE:
        return None
    return audit_stream.ended(
        job.id,
        mode=audit.mode,
        max_output_bytes=audit.max_output_bytes,
        status="finished",
        started_at=job.started_at.timestamp() if job.started_at else None,
        ended_at=job.ended_at.timestamp() if job.ended_at else None,
        retval=getattr(job, "_result", None),
        error=None,
    )
