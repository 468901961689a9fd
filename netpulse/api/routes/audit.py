"""`/audit`: the audit trail (who ran what on which device, and what it said)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from netpulse.api.auth import needs
from netpulse.audit import query as audit_query
from netpulse.audit.database import AuditDatabase
from netpulse.errors import NotFound
from netpulse.models.audit import AuditEntry, AuditPage, AuditQuery
from netpulse.security.api_keys import Scope

router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[needs(Scope.AUDIT)])


def get_audit(request: Request) -> AuditDatabase:
    return request.app.state.audit


@router.get("", response_model=AuditPage)
async def search_audit(
    query: Annotated[AuditQuery, Query()], db: AuditDatabase = Depends(get_audit)
) -> AuditPage:
    """Entries newest first; every filter given must match. Pass `next` as `before` for the
    next page."""
    return await run_in_threadpool(audit_query.search, db, query)


@router.get("/{job_id}", response_model=AuditEntry)
async def get_audit_entry(
    job_id: str = Path(..., max_length=64), db: AuditDatabase = Depends(get_audit)
) -> AuditEntry:
    entry = await run_in_threadpool(audit_query.get, db, job_id)
    if entry is None:
        raise NotFound(
            f"the audit trail has no job {job_id!r} (unknown, not archived yet, or expired)"
        )
    return entry
