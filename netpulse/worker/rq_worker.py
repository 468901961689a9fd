"""NetPulse's RQ workers: RQ's classes plus two notifications RQ does not send.

Subclassed (not forked from RQ) because:
- after RQ has stored a job's final state the job id is published, so `GET /jobs/{id}?wait`
  returns at once instead of polling (:class:`JobEndPublisher`);
- when the OS kills a work-horse RQ runs no job callback, so the failure event is recorded
  here (the webhook system promises one final event per job).
"""

from __future__ import annotations

import logging
from typing import Any

from rq import Worker
from rq.job import Job

from netpulse.keys import JOB_DONE_CHANNEL

log = logging.getLogger(__name__)


class JobEndPublisher:
    """Mixin for RQ workers: publish each job's id once its final state is stored."""

    connection: Any

    def _publish_done(self, job: Job) -> None:
        try:
            self.connection.publish(JOB_DONE_CHANNEL, job.id)
        except Exception:
            log.exception("could not publish the end of job %s", job.id)

    def handle_job_success(self, job: Job, queue: Any, started_job_registry: Any, execution: Any):
        super().handle_job_success(job, queue, started_job_registry, execution)  # type: ignore[misc]
        self._publish_done(job)

    def handle_job_failure(
        self, job: Job, queue: Any, started_job_registry=None, exc_string="", execution=None
    ):
        super().handle_job_failure(  # type: ignore[misc]
            job,
            queue=queue,
            started_job_registry=started_job_registry,
            exc_string=exc_string,
            execution=execution,
        )
        self._publish_done(job)


class NetPulseWorker(JobEndPublisher, Worker):
    """The forking worker of the FIFO pool."""

    def handle_work_horse_killed(self, job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        from netpulse.worker.callbacks import record_killed

        record_killed(job, self.connection, ret_val)
