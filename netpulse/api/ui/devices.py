"""Devices and their sessions: which worker node holds which device, and how its recent
pinned jobs went.

The node directory (``nodes/directory.py``) says who holds what; a node keeps its session
pool's figures in its own memory, so how often sessions were reused and the last error are
read from the device's recent jobs instead (``metadata.session_reused`` of each result,
``result.error`` of failed jobs): the newest :data:`RECENT` jobs of each node's queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request, Response
from redis import Redis
from rq.job import Job

from netpulse.api.deps import base_url
from netpulse.api.ui.access import Viewer, needs, viewer
from netpulse.api.ui.jobs import aware
from netpulse.api.ui.paths import PREFIX
from netpulse.api.ui.render import UiRoute, page
from netpulse.api.views import listed
from netpulse.dispatch import jobs
from netpulse.models.job import JobInResponse
from netpulse.nodes.directory import NodeDirectory, node_queue
from netpulse.security.api_keys import Scope

router = APIRouter(prefix=PREFIX + "/devices", route_class=UiRoute)

#: Jobs per node queue read for the activity columns.
RECENT = 200


@dataclass
class DeviceActivity:
    """What a device's recent jobs say about its session."""

    jobs: int = 0
    reused: int = 0
    last_job: JobInResponse | None = None
    last_error: str | None = None
    errors: int = 0


def activity(found: Iterable[tuple[str, JobInResponse]]) -> dict[str, DeviceActivity]:
    """Per device key: jobs seen, jobs that ran on a reused session, the newest job and the
    newest error. ``found`` is (device key, job) pairs, newest first."""
    seen: dict[str, DeviceActivity] = {}
    for device, job in found:
        entry = seen.setdefault(device, DeviceActivity())
        entry.jobs += 1
        if entry.last_job is None:
            entry.last_job = job
        items = (job.result.retval if job.result else None) or []
        if items and items[0].metadata.get("session_reused"):
            entry.reused += 1
        error = job.result.error if job.result else None
        if error is not None:
            entry.errors += 1
            if entry.last_error is None:
                entry.last_error = f"{error.type.value}: {error.message}"
    return seen


def _recent(conn: Redis, names: list[str], base: str) -> list[tuple[str, JobInResponse]]:
    found: list[Job] = []
    for name in names:
        found += jobs.find_jobs(conn, None, node_queue(name), None, RECENT)
    device_of = {job.id: str((job.meta or {}).get("device", "")) for job in found}
    shown = sorted(listed(found, base), key=lambda j: aware(j.created_at), reverse=True)
    return [(device_of[job.id], job) for job in shown]


@router.get("")
def devices_page(request: Request, who: Viewer = Depends(viewer)) -> Response:
    needs(who, "reading workers and devices", Scope.READ)
    conn = request.app.state.redis
    nodes = NodeDirectory(conn).nodes()
    rows = [(device, node) for node in nodes for device in node.devices]
    seen = activity(_recent(conn, [n.name for n in nodes], base_url(request)))
    return page(
        request,
        "devices.html",
        rows=sorted(rows, key=lambda r: r[0]),
        activity=seen,
        nodes=nodes,
        recent=RECENT,
    )
