"""Tell the controllers that jobs ended: one publish on ``JOB_DONE_CHANNEL`` per job.

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

from netpulse.keys import JOB_DONE_CHANNEL
from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS

log = logging.getLogger(__name__)


def publish_job_end(conn: Redis, job_ids: str | Iterable[str]) -> None:
    """Publish the end of ``job_ids`` (their final state is already stored).

    A lost publish only delays a waiting request (it re-reads its job when the controller
    subscribes again, and at the end of its wait), so a failure is logged, never raised.
    """
    ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
    if not ids:
        return
    try:
        with conn.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.publish(JOB_DONE_CHANNEL, job_id)
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
