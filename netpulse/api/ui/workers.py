"""Worker nodes and FIFO workers (load, capacity, heartbeats) and Drain for a node.

Both are the workers routes' own functions: the list is ``GET /workers``'s, and Drain is
``DELETE /workers/{name}`` for a node (its devices move to other live nodes with their
queued jobs, it exits once idle; refused when it is the only live node).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from netpulse.api.routes import workers as routes
from netpulse.api.ui.access import Refused, Viewer, acting, needs, viewer
from netpulse.api.ui.paths import PREFIX
from netpulse.api.ui.render import UiRoute, done, page
from netpulse.nodes.directory import NodeDirectory
from netpulse.security.api_keys import Scope

router = APIRouter(prefix=PREFIX + "/workers", route_class=UiRoute)


def _listing(request: Request) -> dict[str, Any]:
    found = routes.list_workers(queue=None, node=None, host=None, conn=request.app.state.redis)
    return {
        "nodes": [w for w in found if w["kind"] == "node"],
        "fifo": [w for w in found if w["kind"] != "node"],
    }


@router.get("")
def workers_page(request: Request, who: Viewer = Depends(viewer)) -> Response:
    needs(who, "reading workers", Scope.READ)
    return page(request, "workers.html", **_listing(request))


@router.get("/tables")
def workers_tables(request: Request, who: Viewer = Depends(viewer)) -> Response:
    """The two tables alone: what the page fetches every 2 s."""
    needs(who, "reading workers", Scope.READ)
    return page(request, "_workers_tables.html", **_listing(request))


def _drain(request: Request, name: str) -> dict[str, Any]:
    conn = request.app.state.redis
    if name not in {n.name for n in NodeDirectory(conn).nodes()}:
        raise Refused(404, f"no worker node named {name!r}")
    return routes.stop_worker(name, conn=conn, settings=request.app.state.settings)


@router.post("/{name}/drain")
async def drain(name: str, request: Request, who: Viewer = Depends(acting)) -> Response:
    """As ``DELETE /workers/{name}`` for a node (needs admin)."""
    needs(who, "draining a node", Scope.ADMIN)
    reply = await run_in_threadpool(_drain, request, name)
    moved = reply.get("moved") or {}
    where = "; ".join(f"{device} → {node}" for device, node in sorted(moved.items()))
    sentence = f"Node {name} is draining; it exits once its running jobs end." + (
        f" Devices moved: {where}." if where else " It held no device."
    )
    return done(request, f"{PREFIX}/workers", sentence)
