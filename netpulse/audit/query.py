"""Reading the audit trail: ``GET /audit``, ``GET /audit/{job_id}`` and the dashboard.

Newest first, by submission time then job id; a page's ``next`` is the last entry's
``<time>|<job id>`` (keyset paging: a page costs the same however deep, and entries written
meanwhile never shift it). ``q`` finds text in the lines run or in the output,
case-insensitively.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from netpulse.audit.database import AuditDatabase, AuditStoreUnavailable
from netpulse.audit.schema import audit_jobs
from netpulse.errors import Unprocessable
from netpulse.models.audit import AuditCommand, AuditEntry, AuditMode, AuditPage, AuditQuery

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def entry_of(row: Any) -> AuditEntry:
    data = row._mapping
    results = json.loads(data["results"]) if data["results"] else None
    return AuditEntry(
        job_id=data["job_id"],
        submitted_at=_aware(data["submitted_at"]) or _aware(data["ended_at"]) or _EPOCH,
        submitted_by=data["submitted_by"],
        client=data["client"],
        host=data["host"],
        port=data["port"],
        device_type=data["device_type"],
        driver=data["driver"],
        strategy=data["strategy"],
        queue=data["queue"],
        kind=data["kind"],
        lines=json.loads(data["lines"]) if data["lines"] else None,
        status=data["status"],
        error_type=data["error_type"],
        error=data["error"],
        started_at=_aware(data["started_at"]),
        ended_at=_aware(data["ended_at"]),
        duration=data["duration"],
        results=[AuditCommand.model_validate(r) for r in results] if results is not None else None,
        mode=AuditMode(data["mode"]),
    )


def _cursor(entry: AuditEntry) -> str:
    return f"{entry.submitted_at.isoformat()}|{entry.job_id}"


def _parse_cursor(text: str) -> tuple[datetime, str]:
    try:
        when, job_id = text.split("|", 1)
        return _aware(datetime.fromisoformat(when)) or _EPOCH, job_id
    except ValueError:
        raise Unprocessable("before must be the `next` of an earlier page") from None


def search(db: AuditDatabase, query: AuditQuery) -> AuditPage:
    """One page of entries matching ``query``, newest first."""
    c = audit_jobs.c
    when = func.coalesce(c.submitted_at, c.ended_at)
    conditions = []
    if query.host:
        conditions.append(c.host == query.host)
    if query.submitted_by:
        conditions.append(c.submitted_by == query.submitted_by)
    if query.status:
        conditions.append(c.status == query.status)
    if query.since:
        conditions.append(when >= query.since)
    if query.until:
        conditions.append(when < query.until)
    if query.q:
        needle = f"%{query.q.lower()}%"
        conditions.append(or_(func.lower(c.lines).like(needle), func.lower(c.results).like(needle)))
    if query.before:
        at, job_id = _parse_cursor(query.before)
        conditions.append(or_(when < at, and_(when == at, c.job_id < job_id)))
    statement = (
        select(audit_jobs)
        .where(*conditions)
        .order_by(when.desc(), c.job_id.desc())
        .limit(query.limit + 1)
    )
    db.ensure_ready()
    try:
        with db.engine.connect() as connection:
            found = [entry_of(row) for row in connection.execute(statement)]
    except SQLAlchemyError as exc:
        raise AuditStoreUnavailable(
            f"the audit store cannot be read now ({type(exc).__name__}); try again later"
        ) from None
    more = len(found) > query.limit
    items = found[: query.limit]
    return AuditPage(items=items, next=_cursor(items[-1]) if more and items else None)


def get(db: AuditDatabase, job_id: str) -> AuditEntry | None:
    """The entry of one job, or None if the trail has none (yet)."""
    db.ensure_ready()
    try:
        with db.engine.connect() as connection:
            row = connection.execute(
                select(audit_jobs).where(audit_jobs.c.job_id == job_id)
            ).first()
    except SQLAlchemyError as exc:
        raise AuditStoreUnavailable(
            f"the audit store cannot be read now ({type(exc).__name__}); try again later"
        ) from None
    return entry_of(row) if row is not None else None
