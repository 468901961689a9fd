"""The audit trail with search: who ran what on which device, when, and how it ended.

It reads through ``netpulse.audit.query`` (``search`` and ``get``, what ``GET /audit``
calls) on the controller's audit store, ``app.state.audit``, and needs the ``audit`` scope
(or ``admin``), as the API does. A store that cannot be read now is a 503 with a sentence
(``AuditStoreUnavailable``), as in the API.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from netpulse.api.ui.access import Refused, Viewer, needs, viewer
from netpulse.api.ui.paths import PREFIX
from netpulse.api.ui.render import UiRoute, page
from netpulse.audit.database import AuditDatabase
from netpulse.audit.query import get as audit_get
from netpulse.audit.query import search as audit_search
from netpulse.models.audit import AuditQuery
from netpulse.security.api_keys import Scope

router = APIRouter(prefix=PREFIX + "/audit", route_class=UiRoute)

#: Entries on one page (``next`` pages on).
PAGE_SIZE = 50
#: The search form's fields, as ``AuditQuery`` names them.
FIELDS = ("host", "submitted_by", "status", "q", "since", "until", "before")


def _store(request: Request, who: Viewer) -> AuditDatabase:
    needs(who, "reading the audit trail", Scope.AUDIT)
    store = getattr(request.app.state, "audit", None)
    if store is None:
        raise Refused(503, "the audit trail is not available on this controller")
    return store


def _query(request: Request) -> tuple[AuditQuery, dict[str, str]]:
    """The search of the query string; 422 with a sentence naming a bad field."""
    given = {
        name: request.query_params[name].strip()
        for name in FIELDS
        if request.query_params.get(name, "").strip()
    }
    try:
        return AuditQuery.model_validate({**given, "limit": PAGE_SIZE}), given
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in error["loc"]) or "the search"
        hint = (
            " (a time with a zone, like 2026-12-07T09:00:00Z)"
            if where in ("since", "until")
            else ""
        )
        raise Refused(422, f"{where}: {error['msg']}{hint}") from None


@router.get("")
def audit_page(request: Request, who: Viewer = Depends(viewer)) -> Response:
    store = _store(request, who)
    query, given = _query(request)
    found = audit_search(store, query)
    older = None
    if found.next:
        older = urlencode(
            {**{k: v for k, v in given.items() if k != "before"}, "before": found.next}
        )
    return page(
        request,
        "audit.html",
        entries=found.items,
        given=given,
        older=older,
        searched=bool(given),
    )


@router.get("/{job_id}")
def audit_entry(job_id: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    store = _store(request, who)
    if len(job_id) > 128:
        raise Refused(404, "no audit entry for so long a job id")
    entry = audit_get(store, job_id)
    if entry is None:
        raise Refused(404, f"the audit trail has no entry for job {job_id!r} (yet)")
    return page(request, "audit_entry.html", entry=entry)
