"""Job views returned by the API: the contract's `JobInResponse` and its parts."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any

from pydantic import BaseModel, Field


class ResultType(IntEnum):
    """`result.type` of the contract: 1 successful, 2 failed, 3 stopped, 4 retried."""

    SUCCESSFUL = 1
    FAILED = 2
    STOPPED = 3
    RETRIED = 4


class JobErrorType(StrEnum):
    """``result.error.type``: why a job did not finish. The one list (docs/api.md names each,
    and ``tests/unit/test_job_error_types.py`` checks that the two agree)."""

    CONNECTION = "connection"
    AUTHENTICATION = "authentication"
    TIMEOUT = "timeout"
    DRIVER_ERROR = "driver_error"
    SESSION_LOST = "session_lost"
    FILE_MISSING = "file_missing"
    CREDENTIAL_ERROR = "credential_error"
    WORKER_KILLED = "worker_killed"
    WORKER_LOST = "worker_lost"
    NODE_LOST = "node_lost"
    STOPPED = "stopped"
    CANCELED = "canceled"
    EXCEPTION = "exception"


class JobError(BaseModel):
    """Why a job failed: a short machine-readable type and a sentence for people."""

    type: JobErrorType
    message: str


class DriverExecutionResult(BaseModel):
    """The outcome of one command (or one config push) on one device."""

    command: str
    stdout: str = ""
    stderr: str = ""
    exit_status: int = 0
    download_url: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    parsed: Any | None = None


class JobResult(BaseModel):
    type: ResultType
    retval: list[DriverExecutionResult] | None = None
    error: JobError | None = None


class JobInResponse(BaseModel):
    """A job as the public client (`netpulse-sdk`) reads it from `GET /jobs/{id}`."""

    id: str
    status: str
    created_at: datetime | None = None
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    queue: str | None = None
    worker: str | None = None
    result: JobResult | None = None
    task_id: str | None = None
    device_name: str | None = None
    command: list[str] | None = None
    duration: float | None = None
    queue_time: float | None = None
    notices: list[str] | None = Field(
        None, description="Fields of the request accepted but not acted on, and why."
    )
    submitted_by: str | None = Field(
        None, description="The name of the API key that submitted the job."
    )


class BulkFailure(BaseModel):
    host: str
    reason: str


class BulkResponse(BaseModel):
    succeeded: list[JobInResponse] = Field(default_factory=list)
    failed: list[BulkFailure] = Field(default_factory=list)
