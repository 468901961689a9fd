"""`/detached-tasks`: long-running commands started with `detach: true` (the follower,
`netpulse worker detached`, reads their logs and records their events)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from redis import Redis

from netpulse.api.auth import needs
from netpulse.api.deps import get_app_settings, get_redis
from netpulse.config import Settings
from netpulse.detached import store
from netpulse.detached.store import TaskStatus
from netpulse.dispatch import detached
from netpulse.models.detached import DetachedTaskInResponse, DetachedTaskLog, DiscoverRequest
from netpulse.security.api_keys import Scope

router = APIRouter(prefix="/detached-tasks", tags=["detached tasks"])


@router.get("", response_model=list[DetachedTaskInResponse], dependencies=[needs(Scope.READ)])
def list_tasks(
    status: TaskStatus | None = Query(None, description="Only tasks in this state."),
    conn: Redis = Depends(get_redis),
) -> list[DetachedTaskInResponse]:
    """Every task kept (newest first)."""
    return [detached.view(task) for task in store.listing(conn, status)]


@router.get("/{task_id}", response_model=DetachedTaskLog, dependencies=[needs(Scope.READ)])
def get_task(
    task_id: str,
    offset: int = Query(0, ge=0, description="Log bytes already read (the last next_offset)."),
    conn: Redis = Depends(get_redis),
) -> DetachedTaskLog:
    """The task's state and its log from ``offset``."""
    return detached.log_of(conn, detached.load(conn, task_id), offset)


@router.delete("/{task_id}", dependencies=[needs(Scope.EXEC)])
def kill_task(task_id: str, conn: Redis = Depends(get_redis)) -> dict[str, Any]:
    """Kill a running task's process group (the follower does it at once, then removes its
    directory and records ``detached.failed`` with ``killed``); forget an ended one."""
    return detached.kill(conn, detached.load(conn, task_id))


@router.delete("", dependencies=[needs(Scope.ADMIN)])
def forget_tasks(conn: Redis = Depends(get_redis)) -> list[str]:
    """Forget every task (running ones go on on their hosts; discover finds them again)."""
    return detached.forget_all(conn)


@router.post(
    "/discover", response_model=list[DetachedTaskInResponse], dependencies=[needs(Scope.EXEC)]
)
async def discover_tasks(
    body: DiscoverRequest,
    conn: Redis = Depends(get_redis),
    settings: Settings = Depends(get_app_settings),
) -> list[DetachedTaskInResponse]:
    """Log in to a host and register the tasks this system started there that it no longer
    knows (after ``DELETE /detached-tasks``, or a Redis that lost its data)."""
    found = await run_in_threadpool(
        detached.discover, conn, settings, body.driver, body.connection_args, body.credential
    )
    return [detached.view(task) for task in found]
