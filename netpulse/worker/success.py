"""A finished job's bookkeeping in one round trip (worker nodes).

RQ 3 stores a successful job's outcome in five round trips: ``WATCH`` and ``SMEMBERS`` of the
job's dependents, the ``MULTI``/``EXEC`` of the outcome, an ``HGET`` of its rate limit's
concurrency, then the script that frees the job's slot and promotes its device's next job.
On a worker node every round trip hands the GIL between up to a hundred threads (job threads
and paramiko's transport threads), so these were a fifth of a node's Python time at 100+ jobs
per second. :class:`OneTripSuccess` sends the same writes in one transaction:

- NetPulse's jobs have no dependents (the API offers none): instead of watching the set, the
  transaction reads whether it exists, and if a job somehow has dependents they are enqueued
  by RQ's own code afterwards, as RQ does for a failed job;
- the slot is released inside the transaction, after the outcome (RQ's own release script,
  so the promotion rules are RQ's), with the concurrency the job was queued with: every job of
  a device is queued with the same setting, so this is the value RQ would read.

The transaction also sets the worker's state to idle (this mixin is for thread workers, which
take their next job at once). Jobs RQ handles differently (repeats, no rate limit) take RQ's
own path.
"""

from __future__ import annotations

import logging
from typing import Any

from rq import Queue
from rq.job import Job, JobStatus
from rq.rate_limit import RELEASE_AND_ENQUEUE_SCRIPT, RateLimitRegistry
from rq.utils import current_timestamp, now, utcformat
from rq.worker import WorkerStatus

from netpulse.runtime.scripts import NoScriptError, PipelinedScript, load

log = logging.getLogger(__name__)


#: RQ's release script, loaded into Redis once per process (all job threads share it).
_release: PipelinedScript | None = None


class OneTripSuccess:
    """Mixin for RQ workers: a successful job's outcome, slot and promotion in one ``EXEC``."""

    connection: Any
    name: str
    default_result_ttl: int

    def handle_job_success(self, job: Job, queue: Any, started_job_registry: Any, execution: Any):
        parent = super().handle_job_success  # type: ignore[misc]
        if job.repeats_left or not job.has_rate_limit or job.ended_at is None:
            return parent(job, queue, started_job_registry, execution)
        assert job.started_at is not None and job.rate_limit_concurrency
        registry = RateLimitRegistry.from_job(job)
        release = self._release_script()
        result_ttl = job.get_result_ttl(self.default_result_ttl)
        with self.connection.pipeline() as pipe:
            pipe.exists(job.dependents_key)
            self.increment_successful_job_count(pipeline=pipe)  # type: ignore[attr-defined]
            self.increment_total_working_time(job.ended_at - job.started_at, pipe)  # type: ignore[attr-defined]
            if result_ttl != 0:
                job._handle_success(
                    result_ttl,
                    pipeline=pipe,
                    worker_name=self.name,
                    execution_id=execution.id,
                    execution_started_at=execution.created_at,
                    execution_ended_at=job.ended_at,
                )
            job.cleanup(result_ttl, pipeline=pipe, remove_from_queue=False)
            self.cleanup_execution(job, pipeline=pipe, execution=execution)  # type: ignore[attr-defined]
            # A thread worker takes its next job at once: it is idle from here (RQ's loop
            # would write that in a round trip of its own before waiting for the next job).
            self.set_state(WorkerStatus.IDLE, pipeline=pipe)  # type: ignore[attr-defined]
            release(
                keys=[registry.allowed_key, registry.rate_limited_key],
                args=[
                    job.rate_limit_concurrency,
                    current_timestamp(),
                    utcformat(now()),
                    Queue.redis_queue_namespace_prefix,
                    Job.redis_job_namespace_prefix,
                    job.id,
                ],
                client=pipe,
            )
            try:
                has_dependents = pipe.execute()[0]
            except NoScriptError:
                # Redis restarted and lost its scripts; the outcome before the release was
                # stored all the same. Load them for the next jobs, release this slot now.
                log.warning("job %s: Redis had lost the release script; loading it", job.id)
                load(self.connection, [release])
                registry.release_and_enqueue(job.id)
                has_dependents = self.connection.exists(job.dependents_key)
        job._status = JobStatus.FINISHED
        if has_dependents:
            self._enqueue_dependents_safely(queue, job)  # type: ignore[attr-defined]

    def _release_script(self) -> PipelinedScript:
        global _release
        release = _release
        if release is None:  # two threads may both load it: harmless, SCRIPT LOAD is idempotent
            release = PipelinedScript(self.connection, RELEASE_AND_ENQUEUE_SCRIPT)
            load(self.connection, [release])
            _release = release
        return release
