"""A job's start in one round trip (worker nodes).

RQ 3 starts a job in two transactions: ``prepare_execution`` stores the execution record
(its hash, the job's execution registry, the started registry, the worker's index) and the
worker's ``busy`` state; ``prepare_job_execution`` then stores the heartbeats and marks the
job started. A forking worker needs two, one in the worker and one in the work-horse; a
thread worker runs both back to back, so :class:`OneTripStart` keeps the execution in memory
at the first step and writes everything in the second transaction (which the outage retry of
``rq_worker.OutcomeKeeper`` wraps, so nothing is lost when Redis is away).

The writes are RQ's own (``Execution.create``, ``BaseWorker.prepare_job_execution``, rq 3.0),
in the same order; rq is pinned below 4 in pyproject.toml.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from rq import Queue
from rq.executions import Execution, ExecutionRegistry
from rq.job import Job
from rq.utils import now
from rq.worker import WorkerStatus


class OneTripStart:
    """Mixin for RQ thread workers (it must come after ``OutcomeKeeper`` in the bases)."""

    connection: Any
    name: str
    executions: dict[str, Execution]
    _pending_execution: Execution | None = None

    def prepare_execution(self, job: Job) -> Execution:
        execution = Execution(
            id=uuid4().hex, job_id=job.id, connection=job.connection, worker_name=self.name
        )
        execution._job = job
        self.executions[execution.id] = execution
        self._pending_execution = execution
        return execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        execution = self._pending_execution
        if execution is None or execution.job_id != job.id:  # not started by execute_job
            super().prepare_job_execution(job, remove_from_intermediate_queue)  # type: ignore[misc]
            return
        ttl = self.get_heartbeat_ttl(job)  # type: ignore[attr-defined]
        with self.connection.pipeline() as pipe:
            # Execution.create
            execution.save(ttl=ttl, pipeline=pipe)
            ExecutionRegistry(job_id=job.id, connection=pipe).add(
                execution=execution, ttl=ttl, pipeline=pipe
            )
            job.started_job_registry.add_execution(execution, pipeline=pipe, ttl=ttl, xx=False)
            pipe.sadd(execution.worker_executions_key, execution.composite_key)
            pipe.expire(execution.worker_executions_key, ttl + 60)
            self.set_state(WorkerStatus.BUSY, pipeline=pipe)  # type: ignore[attr-defined]
            # BaseWorker.prepare_job_execution
            self.heartbeat(ttl, pipeline=pipe)  # type: ignore[attr-defined]
            job.heartbeat(now(), ttl, pipeline=pipe)
            job.prepare_for_execution(self.name, pipeline=pipe)
            pipe.persist(job.key)
            if remove_from_intermediate_queue:
                queue = Queue(job.origin, connection=self.connection)
                pipe.lrem(queue.intermediate_queue_key, 1, job.id)
            pipe.execute()
        self._pending_execution = None
