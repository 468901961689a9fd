"""Start a detached task: the job that launches it runs this on its worker, returns at once
with the task id, and ends ``finished``; the follower does the rest."""

from __future__ import annotations

import time
from typing import Any

from redis import Redis

from netpulse.config import Settings
from netpulse.detached import remote, store
from netpulse.detached.store import DetachedTask, TaskStatus
from netpulse.drivers.base import BaseDriver, DriverError
from netpulse.models.job import DriverExecutionResult, JobErrorType
from netpulse.models.request import ExecutionRequest


class LaunchRefused(DriverError):
    """The host has no shell for it, refused it, or has too many tasks running."""

    error_type = JobErrorType.DRIVER_ERROR


def launch(
    driver: BaseDriver,
    req: ExecutionRequest,
    sealed: ExecutionRequest,
    job_id: str | None,
    conn: Redis,
    settings: Settings,
    submitted_by: str | None = None,
) -> list[dict[str, Any]]:
    """Start ``req``'s commands as one detached task on the connected ``driver``'s host;
    ``sealed`` is the request as queued (kept for the follower, secrets sealed)."""
    shell = driver.remote_shell()
    task_id = req.task_id
    if shell is None or task_id is None:
        raise LaunchRefused(f"the {req.driver} driver cannot start detached tasks")
    host = req.connection_args.host
    running = store.running_on(conn, host)
    if running >= settings.detached.max_tasks_per_host:
        raise LaunchRefused(
            f"{host} has {running} detached tasks running already "
            f"(detached.max_tasks_per_host is {settings.detached.max_tasks_per_host})"
        )
    lines = req.lines()
    command = "\n".join(lines)
    started = time.monotonic()
    stdout, stderr, status = shell(remote.launch(task_id, command))
    if status != 0:
        reason = (stderr or stdout).strip()[:500] or f"exit status {status}"
        raise LaunchRefused(f"{driver.target}: the detached task could not start: {reason}")
    pid = int(stdout.strip().splitlines()[-1])
    store.create(
        conn,
        DetachedTask(
            task_id=task_id,
            host=host,
            driver=req.driver,
            command=lines,
            status=TaskStatus.RUNNING,
            created_at=time.time(),
            request=sealed.model_dump_json(),
            job_id=job_id,
            pid=pid,
            push_interval=req.push_interval or 10,
            submitted_by=submitted_by,
        ),
    )
    row = DriverExecutionResult(
        command=command,
        stdout=f"detached task {task_id} started (pid {pid})",
        stderr="",
        exit_status=0,
        metadata={
            "host": host,
            "driver": req.driver,
            "task_id": task_id,
            "pid": pid,
            "duration_seconds": round(time.monotonic() - started, 6),
        },
    )
    return [row.model_dump()]
