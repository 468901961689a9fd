"""An RQ queue whose rate-limited jobs keep their submission order.

RQ 3 orders a rate limit's waiting jobs by an *integer* Unix timestamp, so jobs submitted in
the same second are promoted in job-id order: a device's config changes could run out of order.
This subclass files each waiting job under a microsecond timestamp instead; everything else is
RQ's own behaviour (the registry, the promotion script, the job states).
"""

from __future__ import annotations

import time

from redis.client import Pipeline
from rq import Queue
from rq.job import Job, JobStatus
from rq.rate_limit import RateLimitRegistry
from rq.utils import now


class OrderedQueue(Queue):
    def enqueue_job(
        self,
        job: Job,
        pipeline: Pipeline | None = None,
        at_front: bool = False,
        unique: bool = False,
    ) -> Job:
        """NetPulse's own case (rate limited, no dependencies, no caller's pipeline) goes
        straight to the ordered enqueue below, which registers the queue in its own
        transaction: RQ would first send that ``SADD`` in a round trip of its own."""
        if pipeline is not None or unique or not job.has_rate_limit or job._dependency_ids:
            return super().enqueue_job(job, pipeline=pipeline, at_front=at_front, unique=unique)
        self._check_rate_limit_namespace(job)
        return self._enqueue_rate_limited_job(job, at_front=at_front)

    def _enqueue_rate_limited_job(
        self, job: Job, pipeline: Pipeline | None = None, at_front: bool = False
    ) -> Job:
        if pipeline is not None:  # not used by NetPulse; keep RQ's path for it
            return super()._enqueue_rate_limited_job(job, pipeline=pipeline, at_front=at_front)
        job.redis_server_version = self.get_redis_server_version()
        job.origin = self.name
        if job.timeout is None:
            job.timeout = self._default_timeout
        # RQ calls this only for jobs with a rate limit, and asserts the same in its version.
        concurrency = job.rate_limit_concurrency
        assert concurrency
        registry = RateLimitRegistry.from_job(job)
        job._status = JobStatus.RATE_LIMITED
        if at_front:
            job.enqueue_at_front = True
        with self.connection.pipeline() as pipe:
            pipe.sadd(self.redis_queues_keys, self.key)
            registry.register(concurrency, pipe)
            job.save(pipeline=pipe)
            job.cleanup(ttl=job.ttl, pipeline=pipe)
            registry.add_to_rate_limited(job.id, pipe, timestamp=time.time())
            pipe.execute()
        enqueued_at = now()
        promoted = registry.acquire_and_enqueue(concurrency, enqueued_at=enqueued_at)
        if job.id in promoted:
            job._status = JobStatus.QUEUED
            job.enqueued_at = enqueued_at
        return job
