"""`/workers`: list RQ workers and stop them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from redis import Redis
from rq import Worker
from rq.command import send_shutdown_command

from netpulse.api.deps import get_redis

router = APIRouter(prefix="/workers", tags=["workers"])


def describe(worker: Worker) -> dict[str, Any]:
    return {
        "name": worker.name,
        "status": worker.get_state(),
        "pid": worker.pid,
        "hostname": worker.hostname,
        "queues": worker.queue_names(),
        "last_heartbeat": worker.last_heartbeat,
        "birth_at": worker.birth_date,
        "successful_job_count": worker.successful_job_count,
        "failed_job_count": worker.failed_job_count,
    }


def _matching(conn: Redis, queue: str | None, node: str | None) -> list[Worker]:
    workers = Worker.all(connection=conn)
    if queue:
        workers = [w for w in workers if queue in w.queue_names()]
    if node:
        workers = [w for w in workers if w.hostname == node]
    return workers


@router.get("")
def list_workers(
    queue: str | None = None,
    node: str | None = None,
    host: str | None = None,
    conn: Redis = Depends(get_redis),
) -> list[dict[str, Any]]:
    return [describe(w) for w in _matching(conn, queue, node)]


@router.delete("/{name}")
def stop_worker(name: str, conn: Redis = Depends(get_redis)) -> dict[str, str]:
    """Ask one worker to finish its current job and exit."""
    if not any(w.name == name for w in Worker.all(connection=conn)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no worker named {name!r}")
    send_shutdown_command(conn, name)
    return {"name": name}


@router.delete("")
def stop_workers(
    queue: str | None = None,
    node: str | None = None,
    host: str | None = None,
    conn: Redis = Depends(get_redis),
) -> list[str]:
    names = [w.name for w in _matching(conn, queue, node)]
    for name in names:
        send_shutdown_command(conn, name)
    return names
