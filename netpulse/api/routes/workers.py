"""`/workers`: list RQ workers and stop them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status
from redis import Redis
from rq import Worker
from rq.command import send_shutdown_command
from rq.worker import BaseWorker

from netpulse.api.auth import needs
from netpulse.api.deps import get_app_settings, get_redis
from netpulse.config import Settings
from netpulse.nodes.directory import NodeDirectory
from netpulse.nodes.failover import drain
from netpulse.security.api_keys import Scope

router = APIRouter(prefix="/workers", tags=["workers"])


def describe(worker: BaseWorker) -> dict[str, Any]:
    return {
        "name": worker.name,
        "kind": "fifo",
        "status": worker.get_state(),
        "pid": worker.pid,
        "hostname": worker.hostname,
        "queues": worker.queue_names(),
        "last_heartbeat": worker.last_heartbeat,
        "birth_at": worker.birth_date,
        "successful_job_count": worker.successful_job_count,
        "failed_job_count": worker.failed_job_count,
    }


def _matching(conn: Redis, queue: str | None, node: str | None) -> list[BaseWorker]:
    """RQ workers outside nodes (a node's threads are shown as the node)."""
    workers = [w for w in Worker.all(connection=conn) if not _is_node_thread(w)]
    if queue:
        workers = [w for w in workers if queue in w.queue_names()]
    if node:
        workers = [w for w in workers if w.hostname == node]
    return workers


def _is_node_thread(worker: BaseWorker) -> bool:
    return any(q.startswith("NodeQ_") for q in worker.queue_names())


def _nodes(conn: Redis, queue: str | None, node: str | None, host: str | None) -> list[dict]:
    found = []
    for info in NodeDirectory(conn).nodes():
        view = info.public()
        if queue and queue not in view["queues"]:
            continue
        if node and node not in (info.name, info.hostname):
            continue
        if host and not any(d.split(":")[0] == host for d in info.devices):
            continue
        found.append(view)
    return found


@router.get("", dependencies=[needs(Scope.READ)])
def list_workers(
    queue: str | None = None,
    node: str | None = None,
    host: str | None = None,
    conn: Redis = Depends(get_redis),
) -> list[dict[str, Any]]:
    """FIFO workers, and worker nodes with their capacity, load and devices."""
    fifo = [] if host else [describe(w) for w in _matching(conn, queue, node)]
    return fifo + _nodes(conn, queue, node, host)


@router.delete("/{name}", dependencies=[needs(Scope.ADMIN)])
def stop_worker(
    name: str,
    conn: Redis = Depends(get_redis),
    settings: Settings = Depends(get_app_settings),
) -> dict[str, Any]:
    """Stop a FIFO worker after its job, or drain a node (its devices move, then it exits)."""
    directory = NodeDirectory(conn)
    nodes = {n.name: n for n in directory.nodes()}
    if name in nodes:
        others = [n for n in nodes.values() if n.alive and not n.draining and n.name != name]
        if not others:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"node {name} is the only live node; start another before draining it",
            )
        moved = drain(conn, directory, name, settings)
        return {"name": name, "draining": True, "moved": moved}
    if not any(w.name == name for w in Worker.all(connection=conn)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no worker or node named {name!r}")
    send_shutdown_command(conn, name)
    return {"name": name}


@router.delete("", dependencies=[needs(Scope.ADMIN)])
def stop_workers(
    queue: str | None = None,
    node: str | None = None,
    host: str | None = None,
    conn: Redis = Depends(get_redis),
    settings: Settings = Depends(get_app_settings),
) -> list[str]:
    """Stop the matching FIFO workers; with ``host``, drain the nodes holding that host."""
    if host:
        return _drain_nodes_holding(conn, settings, queue, node, host)
    names = [w.name for w in _matching(conn, queue, node)]
    for name in names:
        send_shutdown_command(conn, name)
    return names


def _drain_nodes_holding(
    conn: Redis, settings: Settings, queue: str | None, node: str | None, host: str
) -> list[str]:
    """Drain each live node holding a device of ``host`` while another live node remains to
    take its devices (the last one is kept: draining it would strand them)."""
    directory = NodeDirectory(conn)
    drained = []
    for view in _nodes(conn, queue, node, host):
        live = [n for n in directory.nodes() if n.alive and not n.draining]
        if view["status"] != "alive" or not [n for n in live if n.name != view["name"]]:
            continue
        drain(conn, directory, view["name"], settings)
        drained.append(view["name"])
    return drained
