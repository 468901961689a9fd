"""Record a job's final webhook event durably in Redis (called from RQ job callbacks).

This runs inside the device worker, so it does no HTTP: one Redis transaction stores the
event's deliveries and wakes the delivery service. An event fans out to the request's own
``webhook`` and to every endpoint whose filters want it (``webhooks.endpoints``), each its
own delivery. The record script's ``SET NX`` makes each delivery unique per event and
destination, whichever path reports the end first (callback, killed work-horse,
abandoned-job cleanup).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from redis import Redis
from redis.client import Pipeline

from netpulse.config import Settings, get_settings
from netpulse.models.job import DriverExecutionResult, JobError
from netpulse.models.request import ExecutionRequest, is_secret_option
from netpulse.runtime.scripts import NoScriptError
from netpulse.runtime.scripts import load as load_scripts
from netpulse.webhooks import events, store
from netpulse.webhooks.endpoints import directory


def request_without_secrets(req: ExecutionRequest) -> dict[str, Any]:
    """The request as a caller sees it: no device credentials, no webhook secrets."""
    data = req.model_dump(mode="json", exclude={"webhook"})
    for where in ("connection_args", "driver_args"):
        options = data.get(where) or {}
        for key in [k for k in options if is_secret_option(k)]:
            del options[key]
    data.pop("credential", None)
    return data


@dataclass(frozen=True)
class EventFacts:
    """What endpoint filters look at: the event's type, device host, queue strategy and the
    name of the API key that submitted the job (None where the event has no such thing)."""

    event_type: str
    host: str | None = None
    strategy: str | None = None
    submitted_by: str | None = None

    @classmethod
    def of_job(cls, event_type: str, meta: dict[str, Any]) -> EventFacts:
        host = meta.get("host")
        return cls(
            event_type=event_type,
            host=None if host is None else str(host),
            strategy=meta.get("strategy"),
            submitted_by=meta.get("submitted_by"),
        )


#: Builds the payload for one destination's ``(format, include_output)``.
PayloadBuilder = Callable[[str, bool], dict[str, Any]]


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
    """Store the job's final event for delivery; the own webhook's delivery id (None without
    one, or if a duplicate). Endpoint deliveries are found through the job's delivery log."""
    settings = get_settings().webhooks

    def build(fmt: str, include_output: bool) -> dict[str, Any]:
        return events.build_event(
            job_id=job_id,
            status=status,
            meta=meta,
            started_at=started_at,
            ended_at=ended_at,
            retval=retval,
            error=error,
            fmt="text" if fmt == "text" else "event",
            max_output_bytes=settings.max_output_bytes,
            include_output=include_output,
        )

    snapshot = store.JobSnapshot(
        id=job_id,
        status=status,
        created_at=created_at.isoformat() if created_at else None,
        started_at=started_at.isoformat() if started_at else None,
        ended_at=ended_at.isoformat() if ended_at else None,
        meta=meta,
    )
    return record_event(
        conn,
        event_key=job_id,
        req=req,
        facts=EventFacts.of_job(events.EVENT_TYPES[status], meta),
        build=build,
        snapshot=snapshot,
    )


def record_started_event(
    conn: Redis,
    *,
    job_id: str,
    req: ExecutionRequest,
    meta: dict[str, Any],
    created_at: datetime | None,
    started_at: datetime,
) -> str | None:
    """Store ``job.started`` for a webhook or endpoint that asked for it; once per job."""
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
        conn,
        event_key=f"{job_id}-started",
        req=req,
        facts=EventFacts.of_job(events.STARTED, meta),
        build=lambda _fmt, _output: payload,
        snapshot=snapshot,
        own=req.webhook is not None and events.STARTED in (req.webhook.events or ()),
    )


@dataclass(frozen=True)
class _Target:
    webhook_json: str
    caller: str
    url: str
    origin: str
    shape: tuple[str, bool]
    endpoint_id: str = ""
    max_per_second: float | None = None


def _targets(
    conn: Redis,
    req: ExecutionRequest | None,
    facts: EventFacts,
    own: bool,
    always: tuple[str, ...],
    settings: Settings,
) -> list[_Target]:
    targets: list[_Target] = []
    webhook = req.webhook if req is not None else None
    if own and webhook is not None:
        targets.append(
            _Target(
                webhook_json=json.dumps(webhook.private_dump()),
                caller=webhook.name,
                url=webhook.public_url(),
                origin=store.origin_of(webhook.url),
                shape=(webhook.format, webhook.include_output),
            )
        )
    found = directory.current(conn, settings).matching(
        facts.event_type, facts.host, facts.strategy, facts.submitted_by, always
    )
    for endpoint in found:
        spec = endpoint.spec
        targets.append(
            _Target(
                webhook_json=endpoint.webhook_json,
                caller=spec.name,
                url=spec.public_url(),
                origin=endpoint.origin,
                shape=(spec.format, spec.include_output),
                endpoint_id=endpoint.id,
                max_per_second=spec.max_per_second,
            )
        )
    return targets


def record_event(
    conn: Redis,
    *,
    event_key: str,
    req: ExecutionRequest | None,
    facts: EventFacts,
    build: PayloadBuilder,
    snapshot: store.JobSnapshot,
    own: bool = True,
    always: tuple[str, ...] = (),
    settings: Settings | None = None,
) -> str | None:
    """Store one event for each of its destinations: the request's own webhook (if ``own``)
    and every endpoint that wants it (or is named in ``always``). Returns the own webhook's
    delivery id, or None when there is none or the event was recorded already (the key
    makes recording idempotent: a job's id for its final event, a task's id and byte range
    for a detached task's push). ``conn`` may be a pipeline: the deliveries join it."""
    settings = settings or get_settings()
    targets = _targets(conn, req, facts, own, always, settings)
    if not targets:
        return None
    now = time.time()
    # Encoded once per event, whatever the number of destinations.
    req_json = json.dumps(request_without_secrets(req) if req is not None else {})
    job_json = json.dumps(asdict(snapshot), default=str)
    bodies: dict[tuple[str, bool], bytes] = {}
    pipe = conn if isinstance(conn, Pipeline) else conn.pipeline(transaction=True)
    box = store.scripts(directory.plain(conn))
    own_id: str | None = None
    for target in targets:
        body = bodies.get(target.shape)
        if body is None:
            body = bodies[target.shape] = events.encode(build(*target.shape))
        fields = store.new_delivery_fields(
            delivery_id=store.new_delivery_id(target.origin),
            job_id=event_key,
            event_type=facts.event_type,
            caller=target.caller,
            url=target.url,
            webhook_json=target.webhook_json,
            req_json=req_json,
            job_json=job_json,
            body=body,
            now=now,
            endpoint_id=target.endpoint_id,
            max_per_second=target.max_per_second,
        )
        if not target.endpoint_id:
            own_id = fields["id"]
        tag = store.origin_tag(target.origin)
        box.record_fields(fields, tag, settings.webhooks.retention_seconds, pipe)
    if pipe is conn:
        return own_id
    try:
        results = pipe.execute()
    except NoScriptError:
        # Redis restarted (and forgot its scripts) since this process loaded them: load
        # them again and record again (each delivery is recorded once whatever happens).
        load_scripts(directory.plain(conn), box.all)
        pipe.reset()
        return record_event(
            conn,
            event_key=event_key,
            req=req,
            facts=facts,
            build=build,
            snapshot=snapshot,
            own=own,
            always=always,
            settings=settings,
        )
    if own_id is not None and not results[0]:
        return None
    return own_id
