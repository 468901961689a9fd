"""Detached tasks as the API shows them (the public client's ``DetachedTaskInfo`` and
``DetachedTaskLog``, plus fields of ours it keeps as extras)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class DetachedTaskInResponse(BaseModel):
    """One task in ``GET /detached-tasks``."""

    task_id: str
    command: list[str]
    host: str
    driver: str
    status: str = Field(description="running, completed, failed or killed.")
    created_at: str | None = None
    last_sync: str | None = Field(None, description="When its log was last read.")
    push_interval: int | None = None
    last_offset: int | None = Field(None, description="Log bytes read so far.")
    connection_args: dict[str, Any] | None = Field(
        None, description="host, port and username only: never a secret."
    )
    pid: int | None = None
    exit_code: int | None = None
    ended_at: str | None = None
    job_id: str | None = None
    submitted_by: str | None = None
    error: dict[str, str] | None = None


class DetachedTaskLog(BaseModel):
    """``GET /detached-tasks/{id}?offset=``: the log from ``offset`` and the task's state."""

    task_id: str
    output: str = Field(description="The log from the offset asked (UTF-8, bad bytes replaced).")
    offset: int = Field(description="Where `output` starts.")
    next_offset: int = Field(description="Give it as ?offset= next time.")
    dropped_bytes: int = Field(
        0, description="Bytes before `offset` no longer kept (detached.max_log_bytes)."
    )
    is_running: bool
    completed: bool = Field(description="Whether the task has ended (whichever way).")
    status: str
    pid: int | None = None
    exit_code: int | None = None
    error: dict[str, str] | None = None


class DiscoverRequest(BaseModel):
    """``POST /detached-tasks/discover``: the host to look at, as a job names it."""

    driver: str = "paramiko"
    connection_args: dict[str, Any]
    credential: dict[str, Any] | None = None
