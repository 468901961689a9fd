"""The webhook events of a detached task, built and recorded in the job events' outbox.

``detached.log_push`` (``final: false``) carries the bytes ``[offset, next_offset)`` of the
remote log, so a receiver can order pushes and drop one it has (its ``webhook-id`` is made
from the launch and ``offset``); exactly one ``detached.completed`` or ``detached.failed``
(``final: true``) ends the task, with its exit code and the last bytes of its output.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from redis import Redis

from netpulse.detached.store import DetachedTask, TaskStatus
from netpulse.models.events import DETACHED_COMPLETED, DETACHED_FAILED, DETACHED_LOG_PUSH
from netpulse.models.request import STORED, ExecutionRequest
from netpulse.webhooks import store as webhook_store
from netpulse.webhooks.outbox.record import EventFacts, record_event

LOG_PUSH = DETACHED_LOG_PUSH
COMPLETED = DETACHED_COMPLETED
FAILED = DETACHED_FAILED
#: Bytes of output a final event repeats (the end of the log).
FINAL_TAIL_BYTES = 4096


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def _common(task: DetachedTask) -> dict[str, Any]:
    return {
        "id": task.task_id,
        "task_id": task.task_id,
        "job_id": task.job_id,
        "timestamp": datetime.now(UTC).isoformat(),
        "device": {"host": task.host},
        "command": task.command,
        "submitted_by": task.submitted_by,
    }


def log_push(task: DetachedTask, start: int, data: bytes) -> dict[str, Any]:
    return {
        **_common(task),
        "event_type": LOG_PUSH,
        "final": False,
        "status": TaskStatus.RUNNING.value,
        "offset": start,
        "next_offset": start + len(data),
        "output": data.decode("utf-8", "replace"),
    }


def final(task: DetachedTask, tail: bytes) -> dict[str, Any]:
    error = {"type": task.error_type, "message": task.error_message} if task.error_type else None
    duration = None
    if task.ended_at is not None:
        duration = round(task.ended_at - task.created_at, 3)
    return {
        **_common(task),
        "event_type": COMPLETED if task.status == TaskStatus.COMPLETED else FAILED,
        "final": True,
        "status": task.status.value,
        "exit_code": task.exit_code,
        "error": error,
        "started_at": _iso(task.created_at),
        "ended_at": _iso(task.ended_at),
        "duration": duration,
        "next_offset": task.offset,
        "output": tail.decode("utf-8", "replace"),
    }


def record(conn: Redis, task: DetachedTask, key: str, payload: dict[str, Any]) -> str | None:
    """Record ``payload`` for the task's webhook and the endpoints that want it, once per
    ``key``; the own webhook's delivery id (None without one, or when recorded already). A
    destination with ``include_output: false`` gets no log bytes (the byte range still says
    how far the task wrote)."""
    req = ExecutionRequest.model_validate_json(task.request, context=STORED)  # still sealed
    snapshot = webhook_store.JobSnapshot(
        id=task.task_id,
        status=task.status.value,
        created_at=_iso(task.created_at),
        started_at=_iso(task.created_at),
        ended_at=_iso(task.ended_at),
        meta={"host": task.host, "command": task.command, "task_id": task.task_id},
    )
    return record_event(
        conn,
        event_key=key,
        req=req,
        facts=EventFacts(
            event_type=payload["event_type"], host=task.host, submitted_by=task.submitted_by
        ),
        build=lambda _fmt, include_output: payload if include_output else _without_output(payload),
        snapshot=snapshot,
    )


def _without_output(payload: dict[str, Any]) -> dict[str, Any]:
    stripped = {**payload, "output": None}
    if stripped.get("error"):
        stripped["error"] = {"type": stripped["error"]["type"]}
    return stripped


def _launch_of(task: DetachedTask) -> str:
    """What makes this launch unique: its job's id (a task id may be used again once the
    task is forgotten; a discovered task has no job: its id and registration time)."""
    return task.job_id or f"{task.task_id}.{int(task.created_at * 1000)}"


def push_key(task: DetachedTask, start: int) -> str:
    """The push of the bytes from ``start``: recorded once; its ``webhook-id`` derives from it."""
    return f"{_launch_of(task)}-log-{start}"


def final_key(task: DetachedTask) -> str:
    return f"{_launch_of(task)}-final"
