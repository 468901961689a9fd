"""Stream records -> table rows (pure, apart from reading RQ for ends that carry no data).

A submission fills the submission columns, an end the end columns (``schema``), so the two
can be written in any order. The archiver's ``audit.mode`` is applied here too: a store kept
with ``metadata`` never receives output, whatever a worker sent.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from netpulse.audit import stream
from netpulse.models.audit import AuditMode

log = logging.getLogger(__name__)


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class Batch:
    """One batch's rows: submissions and ends by job id, and the stream ids to acknowledge."""

    submissions: dict[str, dict[str, Any]] = field(default_factory=dict)
    ends: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ends known only by the job id (read from RQ before writing)
    bare_ends: set[str] = field(default_factory=set)
    entry_ids: list[Any] = field(default_factory=list)


def collect(entries: list[tuple[Any, dict[Any, Any]]], mode: AuditMode, max_output: int) -> Batch:
    """Sort stream entries into a batch; an unreadable entry is logged and acknowledged (a
    record that can never be written must not block the ones after it)."""
    batch = Batch()
    for entry_id, raw in entries:
        batch.entry_ids.append(entry_id)
        fields = {_text(k): _text(v) for k, v in raw.items()}
        try:
            job_id = fields["job"]
            data = json.loads(fields["data"]) if "data" in fields else None
            if fields["kind"] == stream.SUBMITTED:
                batch.submissions[job_id] = submission_row(data or {}, float(fields["at"]), mode)
            elif mode == AuditMode.NONE:
                continue
            elif data is None:
                if job_id not in batch.ends:
                    batch.bare_ends.add(job_id)
            else:
                batch.ends[job_id] = end_row(data, mode, max_output)
                batch.bare_ends.discard(job_id)
        except (KeyError, ValueError, TypeError) as exc:
            log.error("audit record %s cannot be read (%s); skipped", _text(entry_id), exc)
    return batch


def submission_row(data: dict[str, Any], at: float, mode: AuditMode) -> dict[str, Any]:
    kept = AuditMode(data.get("mode") or mode)
    if mode == AuditMode.NONE or kept == AuditMode.NONE:
        return {"submitted_at": _time(at), "submitted_by": data.get("submitted_by"), "mode": "none"}
    lines = data.get("lines")
    return {
        "submitted_at": _time(at),
        "submitted_by": data.get("submitted_by"),
        "client": data.get("client"),
        "host": data.get("host"),
        "port": data.get("port"),
        "device_type": data.get("device_type"),
        "driver": data.get("driver"),
        "strategy": data.get("strategy"),
        "queue": data.get("queue"),
        "kind": data.get("kind"),
        "lines": json.dumps(lines) if lines is not None else None,
        "mode": str(mode if mode != AuditMode.FULL else kept),
    }


def end_row(data: dict[str, Any], mode: AuditMode, max_output: int) -> dict[str, Any]:
    started, ended = _time(data.get("started_at")), _time(data.get("ended_at"))
    results = []
    for item in data.get("results") or []:
        kept = {"command": item.get("command"), "exit_status": item.get("exit_status")}
        if mode == AuditMode.FULL and item.get("output") is not None:
            output = str(item["output"])
            kept["output"] = output[:max_output]
            kept["truncated"] = bool(item.get("truncated")) or len(output) > max_output
        results.append(kept)
    return {
        "status": str(data.get("status") or "unknown"),
        "error_type": data.get("error_type"),
        "error": data.get("error"),
        "started_at": started,
        "ended_at": ended,
        "duration": (ended - started).total_seconds() if started and ended else None,
        "results": json.dumps(results),
    }


def ends_from_rq(
    conn: Redis, job_ids: set[str], mode: AuditMode, max_output: int
) -> dict[str, dict[str, Any]]:
    """The ends of jobs that ended away from a worker (lost pool or node, cancel), read from
    RQ: status, the error NetPulse stored in ``meta``, and the output if RQ still has it."""
    ids = sorted(job_ids)
    try:
        found: list[Job | None] = list(Job.fetch_many(ids, connection=conn))
    except Exception:  # a damaged record among them: read them one by one to find it
        found = [_fetch_one(conn, job_id) for job_id in ids]
    rows: dict[str, dict[str, Any]] = {}
    for job_id, job in zip(ids, found, strict=True):
        if job is _UNREADABLE:
            rows[job_id] = _unknown("the job's record in Redis cannot be read")
        elif job is None:
            rows[job_id] = _unknown("the job expired in Redis before it was archived")
        else:
            rows[job_id] = end_row(_job_end(job), mode, max_output)
    return rows


#: Stands for a job whose record exists but cannot be read (``_fetch_one``).
_UNREADABLE: Any = object()


def _fetch_one(conn: Redis, job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return None
    except Exception as exc:  # a damaged record must not stop the trail
        log.error("job %s: its record cannot be read for the audit trail (%s)", job_id, exc)
        return _UNREADABLE


def _unknown(error: str) -> dict[str, Any]:
    return {
        "status": "unknown",
        "error_type": None,
        "error": error,
        "started_at": None,
        "ended_at": None,
        "duration": None,
        "results": None,
    }


def _job_end(job: Job) -> dict[str, Any]:
    try:
        status = job.get_status(refresh=False)
    except NoSuchJobError:
        status = None
    error = job.meta.get("error") if isinstance(job.meta.get("error"), dict) else None
    if error and error.get("type") == "canceled":
        shown = "canceled"
    elif error and error.get("type") == "stopped":
        shown = "stopped"
    elif status == JobStatus.FINISHED:
        shown = "finished"
    elif status in (JobStatus.CANCELED,):
        shown = "canceled"
    elif status == JobStatus.STOPPED:
        shown = "stopped"
    else:
        shown = "failed"
    retval = None
    if status == JobStatus.FINISHED:
        try:
            retval = job.return_value(refresh=True)
        except Exception:  # a result RQ can no longer read: the end is kept without it
            log.warning("job %s: its result could not be read for the audit trail", job.id)
    results = []
    for item in retval if isinstance(retval, list) else []:
        if isinstance(item, dict):
            results.append(
                {
                    "command": item.get("command"),
                    "exit_status": item.get("exit_status"),
                    "output": item.get("stdout"),
                }
            )
    return {
        "status": shown,
        "error_type": (error or {}).get("type"),
        "error": (error or {}).get("message"),
        "started_at": job.started_at.timestamp() if job.started_at else None,
        "ended_at": job.ended_at.timestamp() if job.ended_at else None,
        "results": results,
    }
