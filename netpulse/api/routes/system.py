"""`/health`, `/system/stats` and `/metrics`."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from netpulse.api.auth import needs
from netpulse.api.deps import get_app_settings, get_redis
from netpulse.config import Settings
from netpulse.nodes.directory import NodeDirectory
from netpulse.nodes.failover import failover_count
from netpulse.runtime.redis_conn import redis_text
from netpulse.security.api_keys import Scope
from netpulse.webhooks.delivery.heartbeat import live_services
from netpulse.worker.pool_directory import PoolDirectory

log = logging.getLogger(__name__)

#: What readiness checks, in the order ``missing`` lists them.
READINESS_PARTS = ("redis", "node", "fifo_workers", "webhook_delivery")

health_router = APIRouter(tags=["system"])
router = APIRouter(tags=["system"])


@health_router.get("/health")
def health() -> dict[str, str]:
    """Liveness only; reveals nothing else."""
    return {"status": "ok"}


def _fifo_workers_live(conn: Redis, queue: str) -> bool:
    """A worker of a live FIFO pool listens on ``queue``: a FIFO job would be taken now.

    A live pool alone is not enough (its workers start after it registers), and a worker entry
    alone is not either (a killed pool leaves its workers' entries behind)."""
    from netpulse.worker.pool import pool_of_worker

    live = {p.pool_id for p in PoolDirectory(conn).live_pools()}
    if not live:
        return False
    prefix = Worker.redis_worker_namespace_prefix
    for key in conn.smembers(WORKERS_BY_QUEUE_KEY % queue):
        name = redis_text(key).removeprefix(prefix)
        if pool_of_worker(name) in live:
            return True
    return False


def readiness_missing(conn: Redis, settings: Settings) -> list[str]:
    """Which of :data:`READINESS_PARTS` would not serve a request made now.

    When Redis does not answer nothing else can be known, so everything is missing."""
    try:
        conn.ping()
        missing = []
        if not any(n.alive and not n.draining for n in NodeDirectory(conn).nodes()):
            missing.append("node")
        if not _fifo_workers_live(conn, settings.worker.fifo_queue):
            missing.append("fifo_workers")
        if live_services(conn) == 0:
            missing.append("webhook_delivery")
    except RedisError as exc:
        log.warning("readiness: Redis did not answer (%s: %s)", type(exc).__name__, exc)
        return list(READINESS_PARTS)
    return missing


@health_router.get(
    "/health/ready",
    responses={503: {"description": "Not ready; `missing` names what is not running."}},
)
def ready(
    response: Response,
    conn: Redis = Depends(get_redis),
    settings: Settings = Depends(get_app_settings),
) -> dict[str, Any]:
    """Readiness: a pinned job and a FIFO job would run now, and their webhooks would be
    delivered. Open like ``/health`` (for probes), so it says only which parts are missing."""
    missing = readiness_missing(conn, settings)
    if missing:
        response.status_code = 503
        return {"status": "not ready", "missing": missing}
    return {"status": "ready"}


@router.get("/system/stats", dependencies=[needs(Scope.READ)])
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
        "status": "online",
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
        "self_healing": {"total_triggers": failover_count(conn)},
        "uptime_seconds": int(time.time() - request.app.state.started_at),
    }


@router.get("/metrics", response_class=Response, dependencies=[needs(Scope.READ)])
def metrics(request: Request) -> Response:
    """Prometheus metrics (webhook delivery counters and backlog)."""
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
