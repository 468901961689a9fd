"""The audit trail's records as the API shows them, and the search over them.

One entry per job: who submitted it, from where, to which device, what ran (the lines after
rendering), how it ended and, with ``audit.mode: full``, what the device said (capped). Never
a secret: the lines are commands and config, the output is the device's.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field


class AuditMode(StrEnum):
    """How much the trail keeps: ``full`` (with output), ``metadata`` (no output), ``none``
    (only that a job ran: its id, time and key)."""

    FULL = "full"
    METADATA = "metadata"
    NONE = "none"


class AuditCommand(BaseModel):
    command: str
    exit_status: int | None = None
    output: str | None = Field(
        None, description="stdout (and stderr), cut to audit.max_output_bytes."
    )
    truncated: bool = False


class AuditEntry(BaseModel):
    """A job in the audit trail."""

    job_id: str
    submitted_at: datetime
    submitted_by: str | None = None
    client: str | None = Field(None, description="The client's address as the controller saw it.")
    host: str | None = None
    port: int | None = None
    device_type: str | None = None
    driver: str | None = None
    strategy: str | None = None
    queue: str | None = None
    kind: str | None = Field(None, description="`command` or `config`.")
    lines: list[str] | None = Field(None, description="What ran, after rendering.")
    status: str = Field(description="`queued` until the job ends, then its final status.")
    error_type: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration: float | None = None
    results: list[AuditCommand] | None = None
    mode: AuditMode = AuditMode.FULL


class AuditQuery(BaseModel):
    """``GET /audit``'s filters; every one given must match. Newest first."""

    host: str | None = Field(None, description="The device's host (exact).")
    since: AwareDatetime | None = Field(None, description="Submitted at or after.")
    until: AwareDatetime | None = Field(None, description="Submitted before.")
    submitted_by: str | None = Field(None, description="The API key's name.")
    status: str | None = None
    q: str | None = Field(
        None, max_length=200, description="Text in the lines run or in the output."
    )
    limit: int = Field(100, ge=1, le=1000)
    before: str | None = Field(
        None, description="The `next` of the previous page (a cursor), for the next page."
    )


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next: str | None = Field(None, description="Pass as `before` for the next page.")
