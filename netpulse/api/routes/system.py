"""`/health`, `/system/stats` and `/metrics`."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis import Redis
from rq import Queue, Worker

from netpulse.api.deps import get_redis
from netpulse.nodes.directory import NodeDirectory

health_router = APIRouter(tags=["system"])
router = APIRouter(tags=["system"])


@health_router.get("/health")
def health() -> dict[str, str]:
    """Liveness only; reveals nothing else."""
    return {"status": "ok"}


@router.get("/system/stats")
def stats(request: Request, conn: Redis = Depends(get_redis)) -> dict[str, Any]:
    all_workers = Worker.all(connection=conn)
    workers = [w for w in all_workers if not any(q.startswith("NodeQ_") for q in w.queue_names())]
    node_threads = len(all_workers) - len(workers)
    nodes = [n for n in NodeDirectory(conn).nodes() if n.alive]
    busy = sum(1 for w in all_workers if w.get_state() == "busy")
    totals = {"succeeded": 0, "failed": 0, "in_progress": 0, "queued": 0}
    for queue in Queue.all(connection=conn):
        totals["queued"] += queue.count
        totals["in_progress"] += queue.started_job_registry.count
        totals["succeeded"] += queue.finished_job_registry.count
        totals["failed"] += queue.failed_job_registry.count
    return {
        "status": "ok",
        "workers": {
            "total": len(all_workers),
            "pinned": node_threads,
            "fifo": len(workers),
            "node": len(nodes),
            "idle": len(all_workers) - busy,
            "busy": busy,
        },
        "jobs": {**totals, "total": sum(totals.values())},
        "nodes": {"active": len(nodes), "total_capacity": sum(n.capacity for n in nodes)},
        "self_healing": {"total_triggers": 0},
        "uptime_seconds": round(time.time() - request.app.state.started_at, 3),
    }


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics (webhook delivery counters and backlog)."""
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
