"""The jobs page (filters, a list that refreshes itself every 2 s), one job's page (its
commands, output, parsed data and webhook deliveries, live until it ends) and Cancel.

Jobs are found by ``dispatch.jobs.find_jobs`` queue by queue and shown by
``api.views.listed``, as ``GET /jobs`` shows them; only the newest :data:`PAGE_SIZE` are
read, so a page costs the same with 10 jobs or 10,000 (``bench/dashboard.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from redis import Redis
from rq import Queue
from rq.job import Job

from netpulse.api.deps import base_url
from netpulse.api.ui.access import Refused, Viewer, acting, needs, viewer
from netpulse.api.ui.paths import PREFIX
from netpulse.api.ui.render import UiRoute, done, page
from netpulse.api.views import listed, show
from netpulse.dispatch import jobs
from netpulse.models.job import JobInResponse
from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS
from netpulse.security.api_keys import Scope
from netpulse.webhooks import deliveries

router = APIRouter(prefix=PREFIX + "/jobs", route_class=UiRoute)

#: Jobs on one page: the newest, over every queue.
PAGE_SIZE = 50
#: With a host or key filter, the newest jobs of each queue looked at. RQ indexes neither
#: (``find_jobs`` reads job after job until it has enough), and the page polls every 2 s, so
#: its cost is bounded here rather than by how rare the host is; the page says so.
FILTER_WINDOW = 2 * jobs.FETCH_CHUNK  # 400: find_jobs reads whole chunks anyway
#: Longest filter value accepted (a host name, a queue, a key name).
MAX_FILTER = 200
#: States a job's page keeps refreshing in (it stops once the job and its deliveries end).
LIVE_DELIVERY_STATES = frozenset({"pending"})


@dataclass(frozen=True)
class JobFilters:
    status: str = ""
    host: str = ""
    queue: str = ""
    key: str = ""

    @classmethod
    def of(cls, request: Request) -> JobFilters:
        """The filters of the query string; 400 with a sentence for a bad one."""
        values = {name: (request.query_params.get(name) or "").strip() for name in cls.names()}
        for name, value in values.items():
            if len(value) > MAX_FILTER:
                raise Refused(400, f"the {name} filter is longer than {MAX_FILTER} characters")
        if values["status"] and values["status"] not in jobs.STATUS_VALUES:
            raise Refused(
                400,
                f"unknown status {values['status']!r}; valid: {', '.join(jobs.STATUS_VALUES)}",
            )
        return cls(**values)

    @staticmethod
    def names() -> tuple[str, ...]:
        return ("status", "host", "queue", "key")

    def query(self) -> str:
        return urlencode({k: v for k, v in asdict(self).items() if v})

    def matches(self, meta: dict[str, Any]) -> bool:
        """Whether a job's ``meta`` has the host and key asked for (status and queue are
        ``find_jobs``'s)."""
        host_ok = not self.host or meta.get("host") == self.host
        return host_ok and (not self.key or meta.get("submitted_by") == self.key)


def aware(value: datetime | None) -> datetime:
    """A time to sort by: RQ's naive times are UTC; none sorts first."""
    value = value or datetime.min
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def newest(conn: Redis, filters: JobFilters, limit: int = PAGE_SIZE) -> list[Job]:
    """The newest ``limit`` jobs that match, over every queue (``find_jobs`` reads one
    queue's registries in turn, so each queue is asked for its own newest); with a host or
    key filter, among the newest :data:`FILTER_WINDOW` of each queue."""
    names = [filters.queue] if filters.queue else [q.name for q in Queue.all(connection=conn)]
    windowed = bool(filters.host or filters.key)
    found: list[Job] = []
    for name in names:
        found += jobs.find_jobs(
            conn, filters.status or None, name, None, FILTER_WINDOW if windowed else limit
        )
    if windowed:
        found = [job for job in found if filters.matches(job.meta or {})]
    found.sort(key=lambda job: aware(job.created_at), reverse=True)
    return found[:limit]


def _listing(request: Request, filters: JobFilters) -> dict[str, Any]:
    conn = request.app.state.redis
    shown = listed(newest(conn, filters), base_url(request))
    return {"jobs": shown, "filters": filters, "page_size": PAGE_SIZE}


@router.get("")
def jobs_page(request: Request, who: Viewer = Depends(viewer)) -> Response:
    needs(who, "reading jobs", Scope.READ)
    filters = JobFilters.of(request)
    queues = sorted(q.name for q in Queue.all(connection=request.app.state.redis))
    return page(
        request,
        "jobs.html",
        statuses=jobs.STATUS_VALUES,
        queues=queues,
        filter_window=FILTER_WINDOW,
        **_listing(request, filters),
    )


@router.get("/rows")
def job_rows(request: Request, who: Viewer = Depends(viewer)) -> Response:
    """The list's rows alone: what the jobs page fetches every 2 s."""
    needs(who, "reading jobs", Scope.READ)
    return page(request, "_job_rows.html", **_listing(request, JobFilters.of(request)))


def _job_view(request: Request, job_id: str) -> dict[str, Any]:
    conn = request.app.state.redis
    job = jobs.load_job(conn, job_id)
    try:
        view: JobInResponse = show(job, base_url(request))
    except REDIS_OUTAGE_ERRORS:
        raise
    except Exception as exc:  # as GET /jobs/{id}: a job stored in a form we cannot show
        raise jobs.JobUnreadable(job_id, exc) from None
    found = deliveries.for_job(conn, job_id)
    live = view.status not in {s.value for s in jobs.FINAL_STATUSES} or any(
        d["state"] in LIVE_DELIVERY_STATES for d in found
    )
    return {"job": view, "deliveries": found, "live": live}


@router.get("/{job_id}")
def job_page(job_id: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    needs(who, "reading jobs", Scope.READ)
    return page(request, "job.html", **_job_view(request, job_id))


@router.get("/{job_id}/panel")
def job_panel(job_id: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    """The job's state, output and deliveries: what its page fetches every 2 s until the
    job and its deliveries have ended."""
    needs(who, "reading jobs", Scope.READ)
    return page(request, "_job_panel.html", **_job_view(request, job_id))


@router.post("/{job_id}/cancel")
async def cancel(job_id: str, request: Request, who: Viewer = Depends(acting)) -> Response:
    """As ``DELETE /jobs/{id}``: cancel a waiting job, stop a running one (needs exec)."""
    needs(who, "cancelling a job", Scope.EXEC)
    conn = request.app.state.redis

    def run() -> None:
        jobs.cancel(conn, jobs.load_job(conn, job_id))

    await run_in_threadpool(run)
    return done(request, f"{PREFIX}/jobs/{job_id}", f"Job {job_id}: cancel requested.")
