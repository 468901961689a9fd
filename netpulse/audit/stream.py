"""The audit stream: what is recorded when a job is submitted and when it ends.

The one owner of the stream's key, its consumer group and its record fields. A record is a
flat map: ``kind`` (``submitted`` or ``ended``), ``job`` (the job id), ``at`` (Unix time)
and ``data`` (JSON, absent in an ``ended`` record that only names the job: the archiver then
reads the job's end from RQ). What goes in ``data`` depends on ``audit.mode``; a secret never
does (the lines are commands and config after rendering, the output is the device's).
"""

from __future__ import annotations

import json
import time
from typing import Any

from netpulse.models.audit import AuditMode

STREAM = "netpulse:audit:stream"
GROUP = "archivers"
SUBMITTED, ENDED = "submitted", "ended"


def submitted(
    job_id: str,
    *,
    mode: AuditMode,
    meta: dict[str, Any],
    queue: str | None,
    kind: str,
    lines: list[str],
    port: int | None,
    client: str | None,
    at: float | None = None,
) -> dict[str, str]:
    """The record of a submission (``none`` keeps only who and when)."""
    data: dict[str, Any] = {"submitted_by": meta.get("submitted_by"), "mode": str(mode)}
    if mode != AuditMode.NONE:
        data.update(
            client=client,
            host=meta.get("host"),
            port=port,
            device_type=meta.get("device_type"),
            driver=meta.get("driver"),
            strategy=meta.get("strategy"),
            queue=queue,
            kind=kind,
            lines=lines,
        )
    return _record(SUBMITTED, job_id, data, at)


def _output(item: dict[str, Any], limit: int) -> tuple[str, bool]:
    text = str(item.get("stdout") or "")
    if item.get("stderr"):
        text = f"{text}\n{item['stderr']}" if text else str(item["stderr"])
    return text[:limit], len(text) > limit


def ended(
    job_id: str,
    *,
    mode: AuditMode,
    max_output_bytes: int,
    status: str,
    started_at: float | None,
    ended_at: float | None,
    retval: Any,
    error: dict[str, Any] | None,
) -> dict[str, str]:
    """The record of a job's end, built where the job ended (its output is at hand only
    there: a finished job's result expires after ``job.result_ttl``)."""
    data: dict[str, Any] = {
        "status": status,
        "started_at": started_at,
        "ended_at": ended_at,
        "error_type": (error or {}).get("type"),
        "error": (error or {}).get("message"),
    }
    results = []
    for item in retval if isinstance(retval, list) else []:
        if not isinstance(item, dict):
            continue
        entry: dict[str, Any] = {
            "command": str(item.get("command", "")),
            "exit_status": item.get("exit_status"),
        }
        if mode == AuditMode.FULL:
            entry["output"], entry["truncated"] = _output(item, max_output_bytes)
        results.append(entry)
    data["results"] = results
    return _record(ENDED, job_id, data)


def ended_without_data(job_id: str) -> dict[str, str]:
    """An end known only by the job's id (a pool or node lost, a cancel): the archiver
    reads the rest from RQ (a failed or canceled job is kept a day)."""
    return {"kind": ENDED, "job": job_id, "at": repr(time.time())}


def _record(
    kind: str, job_id: str, data: dict[str, Any], at: float | None = None
) -> dict[str, str]:
    return {
        "kind": kind,
        "job": job_id,
        "at": repr(time.time() if at is None else at),
        "data": json.dumps(data, default=str),
    }


def add(client: Any, record: dict[str, str], max_len: int) -> Any:
    """Append ``record`` (``client`` may be a pipeline), trimming the oldest past ``max_len``."""
    return client.xadd(STREAM, record, maxlen=max_len, approximate=True)
