"""Payload templates: a receiver's own body shape (Slack, Teams, a ticketing system).

A webhook or endpoint with ``template`` gets that Jinja2 template rendered with the event
instead of the event's JSON. It runs in the ``jinja2`` renderer plugin, the one that renders
device configuration, with the same sandbox and limits (``ImmutableSandboxedEnvironment``,
strict undefined variables, operation, time and size budgets); ``tojson`` is one of its
filters. The template sees the event as ``event`` and each of its fields at the top level.

It is checked when it is submitted, rendered once against a sample of every event type its
destination receives (:func:`check`, a 422 naming the type and the error), and rendered for
each attempt by the delivery service (:func:`render_body`): a failure there is an attempt
logged as failed with the error, never the default body.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from netpulse.models import events as catalogue
from netpulse.templates.contract import TemplateError
from netpulse.templates.service import get_plugin
from netpulse.webhooks import events

RENDERER = "jinja2"


class PayloadTemplateError(ValueError):
    """The template cannot make a body for this event (the message says why)."""


def render_body(template: str, event: dict[str, Any]) -> bytes:
    """The body for ``event``, rendered by ``template``."""
    try:
        text = get_plugin(RENDERER, "render").render(template, {**event, "event": event})
    except TemplateError as exc:
        raise PayloadTemplateError(str(exc)) from None
    return text.encode()


def check(template: str, event_types: Iterable[str]) -> None:
    """Render ``template`` against a sample of each event type; raise
    :class:`PayloadTemplateError` naming the first type it fails for."""
    for event_type in event_types:
        try:
            render_body(template, sample(event_type))
        except PayloadTemplateError as exc:
            raise PayloadTemplateError(
                f"the template fails for a sample {event_type} event: {exc}"
            ) from None


def sample(event_type: str, include_output: bool = True) -> dict[str, Any]:
    """A realistic payload of ``event_type`` (shown by ``GET /webhooks/event-types``)."""
    moment = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    meta = {
        "host": "192.0.2.10",
        "device_type": "cisco_ios",
        "command": ["show version"],
        "task_id": None,
        "device_name": "core-1",
        "submitted_by": "automation",
    }
    job_id = "5f0c8a52-6a4e-4bd3-9f0c-0c5e2a8f1b7d"
    finals = {v: k for k, v in events.EVENT_TYPES.items()}
    if event_type in finals:
        failed = finals[event_type] != "finished"
        return events.build_event(
            job_id=job_id,
            status=finals[event_type],  # type: ignore[arg-type]
            meta=meta,
            started_at=moment,
            ended_at=moment,
            retval=[] if failed else [{"command": "show version", "stdout": "IOS 15.2"}],
            error=None,
            now=moment,
            include_output=include_output,
        )
    if event_type == catalogue.JOB_STARTED:
        return events.build_started(job_id=job_id, meta=meta, started_at=moment, now=moment)
    common: dict[str, Any] = {
        "id": "backup-42",
        "task_id": "backup-42",
        "job_id": job_id,
        "timestamp": moment.isoformat(),
        "device": {"host": "192.0.2.20"},
        "command": "tar czf /tmp/etc.tgz /etc",
        "submitted_by": "automation",
        "output": "etc/hosts\n" if include_output else None,
    }
    if event_type == catalogue.DETACHED_LOG_PUSH:
        return {
            **common,
            "event_type": event_type,
            "final": False,
            "status": "running",
            "offset": 0,
            "next_offset": 10,
        }
    if event_type in (catalogue.DETACHED_COMPLETED, catalogue.DETACHED_FAILED):
        ok = event_type == catalogue.DETACHED_COMPLETED
        return {
            **common,
            "event_type": event_type,
            "final": True,
            "status": "completed" if ok else "failed",
            "exit_code": 0 if ok else 2,
            "error": None if ok else {"type": "exit_status", "message": "exit status 2"},
            "started_at": moment.isoformat(),
            "ended_at": moment.isoformat(),
            "duration": 0.0,
            "next_offset": 10,
        }
    if event_type in catalogue.ENDPOINT_TYPES:
        return {
            "id": f"{event_type.split('.')[1]}.ep_0123456789ab.1767268800000",
            "event_type": event_type,
            "final": True,
            "timestamp": moment.isoformat(),
            "endpoint_id": "ep_0123456789ab",
            "url": "https://hooks.example.com/netpulse",
            "reason": "its last 50 deliveries failed"
            if event_type == catalogue.ENDPOINT_DISABLED
            else None,
            "health": {"failing_since": moment.isoformat(), "failed_deliveries": 50, "held": 3},
        }
    raise KeyError(event_type)
