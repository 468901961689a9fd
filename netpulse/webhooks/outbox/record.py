"""Record a job's final webhook event durably in Redis (called from RQ job callbacks).

This runs inside the device worker, so it does no HTTP: one Redis script stores the event and
wakes the delivery service. The script's ``SET NX`` makes the event unique per job, whichever
path reports the end first (callback, killed work-horse, abandoned-job cleanup).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from redis import Redis

from netpulse.config import get_settings
from netpulse.models.job import DriverExecutionResult, JobError
from netpulse.models.request import ExecutionRequest, is_secret_option
from netpulse.models.webhook import WebhookConfig
from netpulse.webhooks import events, store


def webhook_private_dict(webhook: WebhookConfig) -> dict[str, Any]:
    """The webhook config with its secrets readable: stored for delivery, never shown."""
    data = webhook.model_dump(mode="json", exclude={"auth", "secret"})
    if webhook.auth is not None:
        data["auth"] = [webhook.auth[0], webhook.auth[1].get_secret_value()]
    if webhook.secret is not None:
        data["secret"] = webhook.secret.get_secret_value()
    return data


def request_without_secrets(req: ExecutionRequest) -> dict[str, Any]:
    """The request as a caller sees it: no device credentials, no webhook secrets."""
    data = req.model_dump(mode="json", exclude={"webhook"})
    for where in ("connection_args", "driver_args"):
        options = data.get(where) or {}
        for key in [k for k in options if is_secret_option(k)]:
            del options[key]
    data.pop("credential", None)
    return data


def record_final_event(
    conn: Redis,
    *,
    job_id: str,
    req: ExecutionRequest,
    status: events.FinalStatus,
    meta: dict[str, Any],
    created_at: datetime | None,
    started_at: datetime | None,
    ended_at: datetime | None,
    retval: list[DriverExecutionResult] | list[dict[str, Any]] | None,
    error: JobError | None,
) -> str | None:
    """Store the job's final event for delivery; return the delivery id (None if a duplicate)."""
    webhook = req.webhook
    if webhook is None:
        return None
    settings = get_settings().webhooks
    payload = events.build_event(
        job_id=job_id,
        status=status,
        meta=meta,
        started_at=started_at,
        ended_at=ended_at,
        retval=retval,
        error=error,
        fmt=webhook.format,
        max_output_bytes=settings.max_output_bytes,
        include_output=webhook.include_output,
    )
    snapshot = store.JobSnapshot(
        id=job_id,
        status=status,
        created_at=created_at.isoformat() if created_at else None,
        started_at=started_at.isoformat() if started_at else None,
        ended_at=ended_at.isoformat() if ended_at else None,
        meta=meta,
    )
    return record_event(conn, event_key=job_id, req=req, payload=payload, snapshot=snapshot)


def record_started_event(
    conn: Redis,
    *,
    job_id: str,
    req: ExecutionRequest,
    meta: dict[str, Any],
    created_at: datetime | None,
    started_at: datetime,
) -> str | None:
    """Store ``job.started`` for a webhook that asked for it (``events``); once per job."""
    if req.webhook is None or events.STARTED not in (req.webhook.events or ()):
        return None
    payload = events.build_started(job_id=job_id, meta=meta, started_at=started_at)
    snapshot = store.JobSnapshot(
        id=job_id,
        status="started",
        created_at=created_at.isoformat() if created_at else None,
        started_at=started_at.isoformat(),
        ended_at=None,
        meta=meta,
    )
    return record_event(
        conn, event_key=f"{job_id}-started", req=req, payload=payload, snapshot=snapshot
    )


def record_event(
    conn: Redis,
    *,
    event_key: str,
    req: ExecutionRequest,
    payload: dict[str, Any],
    snapshot: store.JobSnapshot,
) -> str | None:
    """Store one event of ``req``'s webhook for delivery; the delivery id, or None when an
    event with ``event_key`` was recorded already (the key makes recording idempotent: a
    job's id for its final event, a task's id and byte range for a detached task's push)."""
    webhook = req.webhook
    if webhook is None:
        return None
    settings = get_settings().webhooks
    now = time.time()
    origin = store.origin_of(webhook.url)
    delivery = store.Delivery.new(
        delivery_id=store.new_delivery_id(origin),
        job_id=event_key,
        event_type=payload["event_type"],
        caller=webhook.name,
        url=webhook.public_url(),
        webhook_json=json.dumps(webhook_private_dict(webhook)),
        req=request_without_secrets(req),
        job=snapshot,
        body=events.encode(payload),
        now=now,
    )
    tag = store.origin_tag(origin)
    created = store.scripts(conn).record(delivery, tag, settings.retention_seconds)
    return delivery.id if created else None
