"""NetPulse's RQ workers: RQ's classes plus what RQ does not do for us.

Subclassed (not forked from RQ) because:
- after RQ has stored a job's final state the job id is published, so `GET /jobs/{id}?wait`
  returns at once instead of polling (:class:`JobEndPublisher`);
- a job that ends while Redis is away keeps its result: storing the outcome (and recording its
  webhook event) is retried until Redis answers, instead of RQ giving up and leaving the job
  ``started`` for ever (:class:`OutcomeKeeper`);
- when the OS kills a work-horse RQ runs no job callback, so the failure event is recorded
  here (the webhook system promises one final event per job);
- a worker that stops leaves its pub/sub channel at once (:class:`PromptUnsubscribe`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rq import Worker
from rq.job import Job

from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS, OutageLog, retry_through_outage
from netpulse.webhooks import store as webhook_store
from netpulse.webhooks.endpoints import directory as endpoint_directory
from netpulse.worker.job_end import finished_audit_record, publish_job_end

log = logging.getLogger(__name__)


class OutcomeKeeper:
    """Mixin for RQ workers: a job's outcome is stored even when Redis is away at its end.

    RQ stores a job's result, registries and callbacks' events in ``_finalize_success`` /
    ``_finalize_failure``; when Redis does not answer there, RQ would fail the job with the
    connection error (which it cannot store either) and leave it ``started``. Both are
    retried here until Redis answers again. Retrying is safe: the final state is written in
    one MULTI/EXEC, and the webhook event is unique per job (the outbox's ``SET NX``). Only a
    process that is stopping gives up, and then the job is recovered as abandoned.
    """

    name: str
    _stop_requested: bool

    @property
    def _outcome_outage(self) -> OutageLog:
        outage = self.__dict__.get("_outcome_outage_log")
        if outage is None:
            outage = OutageLog(log, f"worker {self.name}: storing a job's outcome")
            self.__dict__["_outcome_outage_log"] = outage
        return outage

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        """Mark the job started (before its function runs). RQ would fail a job whose marking
        met a Redis outage with the connection error, although the job never ran; it is
        retried instead (one MULTI/EXEC of idempotent writes)."""
        parent = super().prepare_job_execution  # type: ignore[misc]
        retry_through_outage(
            lambda: parent(job, remove_from_intermediate_queue),
            self._outcome_outage,
            stop=lambda: self._stop_requested,
        )

    def _finalize_success(self, job: Job, queue: Any, execution: Any, return_value: Any) -> None:
        parent = super()._finalize_success  # type: ignore[misc]
        retry_through_outage(
            lambda: parent(job, queue, execution, return_value),
            self._outcome_outage,
            stop=lambda: self._stop_requested,
        )

    def _finalize_failure(self, job: Job, queue: Any, execution: Any, exc_info: Any) -> None:
        parent = super()._finalize_failure  # type: ignore[misc]
        retry_through_outage(
            lambda: parent(job, queue, execution, exc_info),
            self._outcome_outage,
            stop=lambda: self._stop_requested,
        )


class PromptUnsubscribe:
    """Mixin for RQ workers: stopping never waits on the pub/sub thread's 60 s sleep.

    RQ's ``unsubscribe`` sends UNSUBSCRIBE, then calls redis-py's ``PubSubWorkerThread.stop()``,
    which (redis-py 8.2) joins the thread with no time limit. When the thread has already
    read the UNSUBSCRIBE reply and looped back before the stop flag was cleared, it waits for
    a subscription that never comes for RQ's whole ``sleep_time`` (60 s): a worker told to
    stop (or whose pool was killed) hung that long. The flag is cleared first here, so the
    thread leaves as soon as the reply arrives; the join is bounded all the same.
    """

    pubsub: Any
    pubsub_thread: Any
    name: str

    def unsubscribe(self) -> None:
        thread = self.pubsub_thread
        if not thread:
            return
        log.debug("worker %s: leaving its pub/sub channel", self.name)
        thread.stop(timeout=0)  # clears the run flag; no wait yet
        try:
            self.pubsub.unsubscribe()
        except REDIS_OUTAGE_ERRORS as exc:
            log.debug("worker %s: UNSUBSCRIBE not sent (%s)", self.name, exc)
        thread.join(timeout=1)
        self.pubsub.close()


class JobEndPublisher:
    """Mixin for RQ workers: publish each job's id once its final state is stored."""

    connection: Any

    def _publish_done(self, job: Job, finished: bool) -> None:
        """A finished job's audit record carries its output (at hand only here: the result
        expires after ``job.result_ttl``); any other end names the job, and the archiver
        reads its error from RQ (a failed job is kept at least a day)."""
        record = None
        if finished:
            try:
                record = finished_audit_record(job)
            except Exception:  # the archiver then reads the job from RQ
                log.exception("job %s: its audit record could not be built", job.id)
        publish_job_end(self.connection, job.id, {job.id: record} if record else None)

    def handle_job_success(self, job: Job, queue: Any, started_job_registry: Any, execution: Any):
        super().handle_job_success(job, queue, started_job_registry, execution)  # type: ignore[misc]
        self._publish_done(job, finished=True)

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
        self._publish_done(job, finished=False)


class NetPulseWorker(PromptUnsubscribe, JobEndPublisher, OutcomeKeeper, Worker):
    """The forking worker of the FIFO pool."""

    #: Set by SIGINT/SIGTERM. RQ stops an idle worker by raising out of its loop without
    #: setting ``_stop_requested``; the loop around RQ's (``serving.serve``) must know the
    #: difference between "asked to stop" and "ended because Redis went away".
    stop_signalled = False

    #: Whether the process was asked to stop before RQ's own handlers were in place (set by
    #: the FIFO worker process; its handlers only note the signal).
    pending_stop: Callable[[], bool] = staticmethod(lambda: False)

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_signalled = True
        super().request_stop(signum, frame)

    def _install_signal_handlers(self) -> None:
        """RQ's handlers replace the process's own at the start of ``work()``: a SIGTERM that
        came just before (the pool died while this worker was starting) must not be lost,
        or the worker would serve on, orphaned, until its next signal."""
        super()._install_signal_handlers()
        if self.pending_stop():
            self.stop_signalled = True
            self._stop_requested = True

    def execute_job(self, job: Job, queue: Any) -> None:
        """Read the webhook endpoints here, before the fork: the work-horse then starts with
        them (and the delivery scripts) known, and its job's event costs one version check
        instead of reading every endpoint again (job end -> event recorded)."""
        try:
            endpoint_directory.current(self.connection)
            webhook_store.scripts(self.connection)  # loaded once, here, not in each horse
        except Exception as exc:  # the horse reads them itself; the job is not held up
            log.debug("webhook endpoints not read before the job (%s)", exc)
        super().execute_job(job, queue)

    def main_work_horse(self, job: Job, queue: Any) -> None:
        """The work-horse dies with its worker: RQ puts it in a process group of its own, so
        stopping the pool's group would not reach it, and a horse whose worker was killed
        would run on unwatched."""
        from netpulse.runtime.lifeline import die_with_parent

        die_with_parent()
        super().main_work_horse(job, queue)

    def maintain_heartbeats(self, job: Job, execution: Any) -> None:
        """While the horse runs, a Redis outage must not make the worker give up on it (RQ
        would leave the loop that waits for the horse, and the job with it)."""
        try:
            super().maintain_heartbeats(job, execution)
        except REDIS_OUTAGE_ERRORS as exc:
            self._outcome_outage.failed(exc)
        else:
            self._outcome_outage.recovered()

    def handle_work_horse_killed(self, job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)
        from netpulse.worker.callbacks import record_killed

        record_killed(job, self.connection, ret_val)
