"""Build the payload a receiver gets when a job ends.

Default form (``format: "event"``): the structured event the public client's
``WebhookEvent`` model parses. ``format: "text"``: the specification's literal form, where
``result`` is one string holding the output or the error text.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from netpulse.models.events import (
    JOB_CANCELED,
    JOB_COMPLETED,
    JOB_FAILED,
    JOB_STARTED,
    JOB_STOPPED,
)
from netpulse.models.job import DriverExecutionResult, JobError

FinalStatus = Literal["finished", "failed", "stopped", "canceled"]

EVENT_TYPES: dict[str, str] = {
    "finished": JOB_COMPLETED,
    "failed": JOB_FAILED,
    "stopped": JOB_STOPPED,
    "canceled": JOB_CANCELED,
}
RESULT_TYPES: dict[str, str] = {
    "finished": "successful",
    "failed": "failed",
    "stopped": "stopped",
    "canceled": "stopped",
}


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _cut_outputs(retval: list[dict[str, Any]], budget: int) -> tuple[list[dict[str, Any]], bool]:
    """Shorten stdout/stderr so the outputs fit ``budget`` bytes; say whether anything was cut."""
    total = sum(len(r.get("stdout") or "") + len(r.get("stderr") or "") for r in retval)
    if total <= budget:
        return retval, False
    share = max(budget // max(len(retval), 1), 0)
    cut = []
    for item in retval:
        item = dict(item)
        for key in ("stdout", "stderr"):
            text = item.get(key) or ""
            if len(text) > share:
                item[key] = text[:share]
        cut.append(item)
    return cut, True


def _device(meta: dict[str, Any]) -> dict[str, str]:
    """``{host, device_type}`` as strings (the client's model wants strings); a field that
    is not known is left out."""
    return {
        k: str(v)
        for k, v in (("host", meta.get("host")), ("device_type", meta.get("device_type")))
        if v is not None
    }


def build_event(
    *,
    job_id: str,
    status: FinalStatus,
    meta: dict[str, Any],
    started_at: datetime | None,
    ended_at: datetime | None,
    retval: list[DriverExecutionResult] | list[dict[str, Any]] | None,
    error: JobError | None,
    fmt: Literal["event", "text"] = "event",
    max_output_bytes: int = 256 * 1024,
    now: datetime | None = None,
    include_output: bool = True,
) -> dict[str, Any]:
    """The payload for the job's final event, as a JSON-ready dict. Without
    ``include_output`` it holds no device output at all: per command only its name and exit
    status, the error's type without its message (which may quote the device), and the
    job's URL to fetch the rest with an API key."""
    items = [
        r.model_dump() if isinstance(r, DriverExecutionResult) else dict(r) for r in retval or []
    ]
    items, truncated = _cut_outputs(items, max_output_bytes)
    duration = None
    if started_at and ended_at:
        duration = round((ended_at - started_at).total_seconds(), 6)
    error_dict = error.model_dump() if error else None
    if not include_output:
        items = [{"command": i.get("command"), "exit_status": i.get("exit_status")} for i in items]
        error_dict = {"type": error.type} if error else None
        truncated = False
    if fmt == "text":
        if not include_output:
            result: Any = status if error is None else f"{status}: {error.type}"
        elif error is not None:
            result = f"{error.type}: {error.message}"
        else:
            result = "\n".join(str(i.get("stdout") or "") for i in items)
    else:
        result = {"type": RESULT_TYPES[status], "retval": items, "error": error_dict}
    event: dict[str, Any] = {
        "id": job_id,
        "status": status,
        "event_type": EVENT_TYPES[status],
        "final": True,
        "timestamp": _iso(now or datetime.now(UTC)),
        "started_at": _iso(started_at),
        "ended_at": _iso(ended_at),
        "duration": duration,
        "result": result,
        "device": _device(meta),
        "task_id": meta.get("task_id"),
        "device_name": meta.get("device_name"),
        "command": meta.get("command"),
        "submitted_by": meta.get("submitted_by"),
    }
    if truncated:
        event["truncated"] = True
    if truncated or not include_output:
        event["job_url"] = f"/jobs/{job_id}"
    return event


#: The event a job sends when a worker begins it (only for webhooks that ask for it).
STARTED = JOB_STARTED


def build_started(
    *, job_id: str, meta: dict[str, Any], started_at: datetime, now: datetime | None = None
) -> dict[str, Any]:
    """The payload of ``job.started`` (``final: false``): who, where, what, since when."""
    return {
        "id": job_id,
        "status": "started",
        "event_type": STARTED,
        "final": False,
        "timestamp": _iso(now or datetime.now(UTC)),
        "started_at": _iso(started_at),
        "device": _device(meta),
        "task_id": meta.get("task_id"),
        "device_name": meta.get("device_name"),
        "command": meta.get("command"),
        "submitted_by": meta.get("submitted_by"),
    }


def encode(event: dict[str, Any]) -> bytes:
    """The exact bytes that are sent and signed."""
    return json.dumps(event, separators=(",", ":"), default=str).encode()
