"""What the `/detached-tasks` routes do: show tasks and their logs, ask the follower to kill
one, forget them, and find on a host the tasks this system launched (re-registering them)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from netpulse import credentials
from netpulse.config import Settings
from netpulse.detached import remote, store
from netpulse.detached.store import DetachedTask, TaskStatus
from netpulse.dispatch import intake
from netpulse.dispatch.submit import check_driver_requirements
from netpulse.drivers import registry as drivers
from netpulse.errors import NotFound, Unprocessable
from netpulse.models.detached import DetachedTaskInResponse, DetachedTaskLog
from netpulse.models.request import ExecutionRequest
from netpulse.security.sealing import seal_request

#: What of a task's login the API shows.
SHOWN_ARGS = ("host", "port", "username", "device_type")


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def _error(task: DetachedTask) -> dict[str, str] | None:
    if task.error_type is None:
        return None
    return {"type": task.error_type, "message": task.error_message or ""}


def view(task: DetachedTask) -> DetachedTaskInResponse:
    req = ExecutionRequest.model_validate_json(task.request, context={})
    shown = req.connection_args.model_dump(include=set(SHOWN_ARGS), exclude_none=True)
    return DetachedTaskInResponse(
        task_id=task.task_id,
        command=task.command,
        host=task.host,
        driver=task.driver,
        status=task.status.value,
        created_at=_iso(task.created_at),
        last_sync=_iso(task.last_sync),
        push_interval=task.push_interval,
        last_offset=task.offset,
        connection_args=shown,
        pid=task.pid,
        exit_code=task.exit_code,
        ended_at=_iso(task.ended_at),
        job_id=task.job_id,
        submitted_by=task.submitted_by,
        error=_error(task),
    )


def load(conn: Redis, task_id: str) -> DetachedTask:
    task = store.get(conn, task_id) if _plausible(task_id) else None
    if task is None:
        raise NotFound(f"no detached task {task_id!r}")
    return task


def _plausible(task_id: str) -> bool:
    return re.fullmatch(remote.TASK_ID_PATTERN, task_id) is not None


def log_of(conn: Redis, task: DetachedTask, offset: int) -> DetachedTaskLog:
    if offset > task.offset:
        raise Unprocessable(
            f"offset {offset} is past the end of the log read so far ({task.offset} bytes)"
        )
    data, start, dropped = store.read_log(conn, task, offset)
    return DetachedTaskLog(
        task_id=task.task_id,
        output=data.decode("utf-8", "replace"),
        offset=start,
        next_offset=start + len(data),
        dropped_bytes=dropped,
        is_running=task.status == TaskStatus.RUNNING,
        completed=task.final,
        status=task.status.value,
        pid=task.pid,
        exit_code=task.exit_code,
        error=_error(task),
    )


def kill(conn: Redis, task: DetachedTask) -> dict[str, Any]:
    """A running task: the follower kills its process group at once, records
    ``detached.failed`` (``killed``) and removes its directory. An ended one is forgotten."""
    if task.final:
        store.forget(conn, task)
        return {"task_id": task.task_id, "status": task.status.value, "forgotten": True}
    store.update(conn, task.task_id, kill_requested=True)
    store.wake(conn, task.task_id)
    return {"task_id": task.task_id, "status": "killing", "forgotten": False}


def forget_all(conn: Redis) -> list[str]:
    """Forget every task record (running tasks keep running on their hosts; discover finds
    them again)."""
    tasks = store.listing(conn, limit=100000)
    for task in tasks:
        store.forget(conn, task)
    return [t.task_id for t in tasks]


def discover(
    conn: Redis,
    settings: Settings,
    driver: str,
    connection_args: dict[str, Any],
    credential: dict[str, Any] | None,
) -> list[DetachedTask]:
    """Log in to the host, list the task directories there, and register each task this
    system does not know (running ones are followed again, without a webhook)."""
    body: dict[str, Any] = {
        "driver": driver,
        "connection_args": connection_args,
        "command": "(found on the host)",
        "detach": True,
    }
    if credential is not None:
        body["credential"] = credential
    req = intake.checked(ExecutionRequest, body)
    check_driver_requirements(req)
    opened = req
    if req.credential is not None:
        args = credentials.fill(req.connection_args, req.credential, driver)
        opened = req.model_copy(update={"connection_args": args})
    session = drivers.get(driver)(opened.connection_args, opened.driver_args)
    session.connect()
    try:
        shell = session.remote_shell()
        assert shell is not None  # check_driver_requirements: detachable
        stdout, _, _ = shell(remote.discover())
    finally:
        session.disconnect()
    found = []
    for task_id, pid, exit_code, running in remote.parse_discover(stdout):
        if store.get(conn, task_id) is not None:
            continue
        task = DetachedTask(
            task_id=task_id,
            host=req.connection_args.host,
            driver=driver,
            command=[],
            status=TaskStatus.RUNNING,
            created_at=time.time(),
            request=seal_request(req.model_copy(update={"task_id": task_id})).model_dump_json(),
            pid=pid,
            exit_code=exit_code,
        )
        store.create(conn, task, running=running)
        found.append(task)  # the follower's first look decides: running, or its end
    return found
