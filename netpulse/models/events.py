"""The webhook event types and the shape of each payload: the one catalogue.

``GET /webhooks/event-types`` lists these with the JSON Schema of each payload model, the
endpoint filters accept their names, and ``tests/integration/test_webhook_event_types.py``
checks that every payload NetPulse records validates against the schema it advertises. The
payloads themselves are built in ``netpulse.webhooks.events`` (jobs), ``netpulse.detached.events``
(detached tasks) and ``netpulse.webhooks.endpoints.health`` (endpoints); these models describe
them and are never on the hot path.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JOB_COMPLETED = "job.completed"
JOB_FAILED = "job.failed"
JOB_STOPPED = "job.stopped"
JOB_CANCELED = "job.canceled"
JOB_STARTED = "job.started"
DETACHED_LOG_PUSH = "detached.log_push"
DETACHED_COMPLETED = "detached.completed"
DETACHED_FAILED = "detached.failed"
ENDPOINT_DISABLED = "endpoint.disabled"
ENDPOINT_RECOVERED = "endpoint.recovered"

#: A job's final event types (one of them ends every job).
JOB_FINAL_TYPES = (JOB_COMPLETED, JOB_FAILED, JOB_STOPPED, JOB_CANCELED)
DETACHED_TYPES = (DETACHED_LOG_PUSH, DETACHED_COMPLETED, DETACHED_FAILED)
ENDPOINT_TYPES = (ENDPOINT_DISABLED, ENDPOINT_RECOVERED)

#: What an endpoint that names no ``event_types`` receives: what a request's own webhook
#: gets. ``job.started`` and the ``endpoint.*`` notices are sent only when asked for.
DEFAULT_SUBSCRIPTION = frozenset(JOB_FINAL_TYPES + DETACHED_TYPES)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")


class Device(BaseModel):
    host: str | None = None
    device_type: str | None = None


class CommandResult(BaseModel):
    """One command's outcome. Without the webhook's ``include_output`` only ``command`` and
    ``exit_status`` are present."""

    model_config = ConfigDict(extra="allow")

    command: str | None = None
    exit_status: int | None = None
    stdout: str | None = None
    stderr: str | None = None
    parsed: Any | None = None


class EventError(BaseModel):
    """Why it failed: the type always, the message unless output is withheld."""

    type: str
    message: str | None = None


class JobResultPart(BaseModel):
    type: Literal["successful", "failed", "stopped"]
    retval: list[CommandResult]
    error: EventError | None


class JobFinalEvent(_Payload):
    """The end of a job (``format: "event"``; with ``format: "text"``, ``result`` is one
    string: the output, or ``<error type>: <message>``)."""

    id: str = Field(description="The job id.")
    status: Literal["finished", "failed", "stopped", "canceled"]
    event_type: Literal["job.completed", "job.failed", "job.stopped", "job.canceled"]
    final: Literal[True]
    timestamp: str
    started_at: str | None
    ended_at: str | None
    duration: float | None
    result: JobResultPart | str
    device: Device
    task_id: str | None
    device_name: str | None
    command: list[str] | str | None
    submitted_by: str | None
    truncated: bool | None = Field(None, description="Output was cut to the size limit.")
    job_url: str | None = Field(None, description="Where the whole result is (with a key).")


class JobStartedEvent(_Payload):
    """A worker began the job (sent only to webhooks and endpoints that ask for it)."""

    id: str
    status: Literal["started"]
    event_type: Literal["job.started"]
    final: Literal[False]
    timestamp: str
    started_at: str | None
    device: Device
    task_id: str | None
    device_name: str | None
    command: list[str] | str | None
    submitted_by: str | None


class _DetachedCommon(_Payload):
    id: str = Field(description="The detached task's id.")
    task_id: str
    job_id: str | None
    timestamp: str
    device: Device
    command: str | list[str] | None
    submitted_by: str | None
    output: str | None = Field(description="Log bytes (null without include_output).")


class DetachedLogPushEvent(_DetachedCommon):
    """New bytes of a running detached task's log, ``[offset, next_offset)``."""

    event_type: Literal["detached.log_push"]
    final: Literal[False]
    status: str
    offset: int
    next_offset: int


class DetachedFinalEvent(_DetachedCommon):
    """The end of a detached task, with its exit code and the end of its log."""

    event_type: Literal["detached.completed", "detached.failed"]
    final: Literal[True]
    status: str
    exit_code: int | None
    error: EventError | None
    started_at: str | None
    ended_at: str | None
    duration: float | None
    next_offset: int


class EndpointHealth(BaseModel):
    failing_since: str | None
    failed_deliveries: int
    held: int


class EndpointEvent(_Payload):
    """An endpoint was disabled after failing, or works again."""

    id: str = Field(description="This notice's id.")
    event_type: Literal["endpoint.disabled", "endpoint.recovered"]
    final: Literal[True]
    timestamp: str
    endpoint_id: str
    url: str = Field(description="The endpoint's URL without credentials or query.")
    reason: str | None
    health: EndpointHealth


#: Every event type: its payload model and a sentence for people.
EVENT_TYPES: dict[str, tuple[type[BaseModel], str]] = {
    JOB_COMPLETED: (JobFinalEvent, "A job finished: every command ran (each has its exit status)."),
    JOB_FAILED: (
        JobFinalEvent,
        "A job failed: the device could not be reached, timed out, or the worker was lost; "
        "`result.error` says which.",
    ),
    JOB_STOPPED: (JobFinalEvent, "A running job was stopped on request."),
    JOB_CANCELED: (JobFinalEvent, "A queued job was canceled before it ran."),
    JOB_STARTED: (JobStartedEvent, "A worker began the job (opt-in)."),
    DETACHED_LOG_PUSH: (DetachedLogPushEvent, "New output of a running detached task."),
    DETACHED_COMPLETED: (DetachedFinalEvent, "A detached task exited with status 0."),
    DETACHED_FAILED: (
        DetachedFinalEvent,
        "A detached task exited with another status, was killed, or its host was lost.",
    ),
    ENDPOINT_DISABLED: (
        EndpointEvent,
        "An endpoint was disabled after failing; its new events are held (opt-in).",
    ),
    ENDPOINT_RECOVERED: (
        EndpointEvent,
        "An endpoint that had failed delivered again (opt-in).",
    ),
}


def matches_type(pattern: str, event_type: str) -> bool:
    """``job.completed`` matches itself; ``job.*`` matches every ``job.`` type."""
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def check_type_pattern(pattern: str) -> str:
    """An event type name or a ``<group>.*`` pattern that names at least one type."""
    if not any(matches_type(pattern, name) for name in EVENT_TYPES):
        groups = sorted({name.split(".")[0] + ".*" for name in EVENT_TYPES})
        raise ValueError(
            f"unknown event type {pattern!r}; valid: {', '.join(EVENT_TYPES)}, "
            f"or a group: {', '.join(groups)}"
        )
    return pattern
