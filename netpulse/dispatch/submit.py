"""Queue device jobs in RQ.

Every job runs ``netpulse.worker.task.run_device_job(req=...)`` with the RQ callbacks that
record its outcome and its webhook event (``netpulse.worker.callbacks``).
"""

from __future__ import annotations

import functools
import logging
import uuid
from typing import Any

from pydantic import ValidationError
from redis import Redis
from rq import Callback
from rq.job import Job
from rq.rate_limit import RateLimit

from netpulse import credentials
from netpulse.audit import stream as audit_stream
from netpulse.config import Settings
from netpulse.detached import store as detached_store
from netpulse.dispatch import intake
from netpulse.dispatch.ordered_queue import OrderedQueue
from netpulse.dispatch.rendering import render_request
from netpulse.drivers import registry as drivers
from netpulse.errors import Conflict, Forbidden, Unavailable, Unprocessable
from netpulse.models.events import DETACHED_TYPES, JOB_FINAL_TYPES, JOB_STARTED
from netpulse.models.job import BulkFailure
from netpulse.models.request import BulkExecutionRequest, ExecutionRequest, QueueStrategy
from netpulse.nodes.directory import NoNodeAvailable, node_queue
from netpulse.nodes.failover import fifo_limit_key, pinned_limit_key, place_device
from netpulse.security.sealing import seal_request
from netpulse.templates.contract import TemplateError
from netpulse.webhooks import payload
from netpulse.webhooks.callers import registry as webhook_callers
from netpulse.webhooks.endpoints import directory as endpoint_directory

#: Callbacks are fast (one Redis script); the bound only guards against a stuck Redis.
CALLBACK_TIMEOUT = 10


log = logging.getLogger(__name__)


class SubmissionError(Unprocessable):
    """The request is valid JSON but cannot be run; the message says why (422)."""


class NoCapacity(Unavailable):
    """No worker node is alive to take a pinned job (503: the service, not the request)."""


def check_driver_requirements(req: ExecutionRequest) -> None:
    """The plugins' checks before anything is queued: the driver exists and accepts the
    request (e.g. netmiko needs a device_type), the webhook caller exists. The API checked
    this already (``intake``); a request built in Python is checked here."""
    if req.webhook is not None and req.webhook.name not in webhook_callers.names():
        valid = ", ".join(webhook_callers.names())
        raise SubmissionError(f"unknown webhook caller {req.webhook.name!r}; valid: {valid}")
    if req.credential is not None:
        credentials.check(req.credential)  # 422 unknown provider, 403 outside allowed paths
    if req.driver not in drivers.names():
        raise SubmissionError(f"unknown driver {req.driver!r}; valid: {', '.join(drivers.names())}")
    driver = drivers.get(req.driver)
    if req.detach and not driver.detachable:
        able = [n for n in drivers.names() if drivers.get(n).detachable]
        raise SubmissionError(
            f"the {req.driver} driver cannot start detached tasks; use one of: {', '.join(able)}"
        )
    if req.file_transfer is not None and not driver.supports_file_transfer:
        able = [n for n in drivers.names() if drivers.get(n).supports_file_transfer]
        raise SubmissionError(
            f"the {req.driver} driver cannot transfer files; use one of: {', '.join(able)}"
        )
    try:
        driver.check_connection_args(req.connection_args)
        driver.check_driver_args(req.driver_args)
        driver.validate_request(req)
    except ValueError as exc:
        raise SubmissionError(str(exc)) from None


def strategy_of(req: ExecutionRequest) -> QueueStrategy:
    """The request's strategy, or its driver's default (pinned for netmiko, per the contract)."""
    if req.queue_strategy is not None:
        return req.queue_strategy
    return drivers.get(req.driver).default_strategy


def device_key(req: ExecutionRequest) -> str:
    """The device's one key (``host:port`` with the driver's default port), see
    :meth:`BaseDriver.device_key`."""
    return drivers.get(req.driver).device_key(req.connection_args)


def queue_and_limit(
    req: ExecutionRequest, conn: Redis, settings: Settings
) -> tuple[str, RateLimit]:
    """Where the job goes, and the per-device limit that keeps its device's jobs in order."""
    device = device_key(req)
    if strategy_of(req) == "pinned":
        if not drivers.get(req.driver).pinnable:
            pinnable = sorted(n for n in drivers.names() if drivers.get(n).pinnable)
            raise SubmissionError(
                f"queue_strategy pinned is available for {', '.join(pinnable)}; "
                f"use fifo for {req.driver}"
            )
        try:
            node = place_device(conn, device, settings)
        except NoNodeAvailable as exc:
            raise NoCapacity(str(exc)) from None
        limit = RateLimit(pinned_limit_key(device), settings.node.pinned_concurrency)
        return node_queue(node), limit
    return settings.worker.fifo_queue, RateLimit(
        fifo_limit_key(device), settings.node.fifo_concurrency
    )


@functools.lru_cache(maxsize=64)
def check_webhook_template(template: str, detached: bool, started: bool) -> None:
    """Render the webhook's payload template once against a sample of each event the job can
    send (a bulk request checks it once); a failure is a 422 that names the event type."""
    types = JOB_FINAL_TYPES + ((JOB_STARTED,) if started else ())
    if detached:
        types += DETACHED_TYPES
    try:
        payload.check(template, types)
    except payload.PayloadTemplateError as exc:
        raise SubmissionError(f"webhook.template: {exc}") from None


def enqueue(
    req: ExecutionRequest,
    conn: Redis,
    settings: Settings,
    submitted_by: str | None = None,
    client: str | None = None,
    any_endpoints: bool | None = None,
) -> Job:
    """Queue one device job (its payload rendered first) and return the RQ job.
    ``submitted_by`` is the name of the API key that asked (shown with the job and in its
    webhook events), ``client`` the address it came from (for the audit trail).
    ``any_endpoints``: whether webhook endpoints exist, when the caller read it already (a
    bulk request reads it once for all its jobs); None reads it here."""
    try:
        req = render_request(req, settings)
    except TemplateError as exc:
        raise SubmissionError(str(exc)) from None
    check_driver_requirements(req)
    if req.webhook is not None and req.webhook.template is not None:
        check_webhook_template(req.webhook.template, req.detach, bool(req.webhook.events))
    if req.detach:
        req = _with_task_id(req, conn)
    queue_name, limit = queue_and_limit(req, conn, settings)
    device, strategy = device_key(req), strategy_of(req)
    queue = OrderedQueue(queue_name, connection=conn)
    lines = req.lines()
    notices = req.notices()
    if notices:
        log.info("job on %s: %s", req.connection_args.host, "; ".join(notices))
    job = queue.enqueue_call(
        "netpulse.worker.task.run_device_job",
        # Queued with its secrets sealed: only the process that runs it opens them.
        kwargs={"req": seal_request(req)},
        timeout=req.execution_timeout or settings.job.execution_timeout,
        ttl=req.ttl or settings.job.ttl,
        result_ttl=req.result_ttl or settings.job.result_ttl,
        failure_ttl=max(req.result_ttl or settings.job.result_ttl, 86400),
        job_id=str(uuid.uuid4()),
        # RQ logs the description; the default would be the call's repr with the request.
        description=f"{req.driver} {lines[0] if lines else 'file transfer'!r} on "
        f"{req.connection_args.host}",
        meta={
            "host": req.connection_args.host,
            "device_type": req.connection_args.device_type,
            "device_name": req.device_name or req.connection_args.host,
            "command": lines,
            "task_id": req.task_id,
            "driver": req.driver,
            "device": device,
            "strategy": strategy,
            "submitted_by": submitted_by,
            **({"notices": notices} if notices else {}),
        },
        rate_limit=limit,
        # Success needs a callback only to notify (the request's webhook, or an endpoint, which
        # may subscribe to it); failures always record their cause.
        on_success=Callback("netpulse.worker.callbacks.on_job_success", CALLBACK_TIMEOUT)
        if req.webhook is not None or _any_endpoints(conn, settings, any_endpoints)
        else None,
        on_failure=Callback("netpulse.worker.callbacks.on_job_failure", CALLBACK_TIMEOUT),
        on_stopped=Callback("netpulse.worker.callbacks.on_job_stopped", CALLBACK_TIMEOUT),
    )
    _audit_submission(conn, settings, job, req, lines, queue_name, client)
    return job


def _any_endpoints(conn: Redis, settings: Settings, known: bool | None) -> bool:
    if known is not None:
        return known
    return bool(endpoint_directory.current(conn, settings).endpoints)


def _audit_submission(
    conn: Redis,
    settings: Settings,
    job: Job,
    req: ExecutionRequest,
    lines: list[str],
    queue_name: str,
    client: str | None,
) -> None:
    """Add the submission to the audit stream (one XADD). The job is queued already: if
    Redis refuses the record now, the job still runs, and the trail learns of it from its
    end (the archiver reads the rest from RQ); the failure is logged."""
    kind = "config" if req.config is not None else "command"
    if req.file_transfer is not None:
        kind = "file_transfer"
    record = audit_stream.submitted(
        job.id,
        mode=settings.audit.mode,
        meta=job.meta,
        queue=queue_name,
        kind=kind,
        lines=lines,
        port=req.connection_args.port,
        client=client,
    )
    try:
        audit_stream.add(conn, record, settings.audit.stream_max_len)
    except Exception:
        log.exception("job %s: its submission was not added to the audit trail", job.id)


def _with_task_id(req: ExecutionRequest, conn: Redis) -> ExecutionRequest:
    """A detached task's id: the client's own (unless taken) or a new one, known at once
    (the job's ``task_id``)."""
    if req.task_id is None:
        return req.model_copy(update={"task_id": uuid.uuid4().hex})
    if detached_store.get(conn, req.task_id) is not None:
        raise Conflict(f"a detached task {req.task_id!r} exists already")
    return req


def enqueue_bulk(
    requests: list[ExecutionRequest],
    conn: Redis,
    settings: Settings,
    submitted_by: str | None = None,
    client: str | None = None,
) -> tuple[list[Job], list[BulkFailure]]:
    """Queue one job per device request (:func:`expand_bulk`); the jobs queued, and the
    devices refused with the reason (a device that cannot be queued never stops the others)."""
    queued, failed = [], []
    # Read once for the whole request: an endpoint made while a bulk is being queued gets
    # the success events of the next request's jobs, not of this one's.
    any_endpoints = bool(endpoint_directory.current(conn, settings).endpoints)
    for req in requests:
        try:
            queued.append(enqueue(req, conn, settings, submitted_by, client, any_endpoints))
        except (SubmissionError, NoCapacity) as exc:
            failed.append(BulkFailure(host=req.connection_args.host, reason=str(exc)))
    return queued, failed


#: What a bulk device object may give instead of the shared payload (everything else in it is
#: a connection argument, except its own ``credential``).
PER_DEVICE_PAYLOAD = ("command", "config", "file_transfer")
PER_DEVICE_FIELDS = (*PER_DEVICE_PAYLOAD, "credential")


def expand_bulk(bulk: BulkExecutionRequest) -> tuple[list[ExecutionRequest], list[BulkFailure]]:
    """One request per device: shared fields, then the device's own overrides."""
    shared = bulk.model_dump(exclude={"devices"}, exclude_unset=True, by_alias=True)
    shared["ttl"] = bulk.ttl  # its default (600) is the bulk's own, not job.ttl
    if bulk.webhook is not None:
        shared["webhook"] = bulk.webhook
    base_args = shared.pop("connection_args", None) or {}
    if not isinstance(base_args, dict):
        base_args = base_args.model_dump(exclude_none=True)
    good: list[ExecutionRequest] = []
    bad: list[BulkFailure] = []
    for index, device in enumerate(bulk.devices):
        host = str(device.get("host") or f"devices[{index}]")
        overrides = {k: v for k, v in device.items() if k not in PER_DEVICE_FIELDS}
        body: dict[str, Any] = {**shared, "connection_args": {**base_args, **overrides}}
        if device.get("credential") is not None:  # the device's own replaces the shared one
            body["credential"] = device["credential"]
        given = [f for f in PER_DEVICE_PAYLOAD if device.get(f) is not None]
        if given:  # the device's own payload replaces the shared one
            for field in PER_DEVICE_PAYLOAD:
                body.pop(field, None)
            for field in given:
                body[field] = device[field]
        try:
            req = intake.checked(ExecutionRequest, body)
            check_driver_requirements(req)
        except ValidationError as exc:
            bad.append(BulkFailure(host=host, reason=describe_validation_error(exc)))
            continue
        except (Unprocessable, Forbidden) as exc:  # a device's own reason never stops the rest
            bad.append(BulkFailure(host=host, reason=str(exc)))
            continue
        good.append(req)
    return good, bad


def describe_validation_error(exc: ValidationError) -> str:
    """One readable sentence from a pydantic error (`field: message; ...`)."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"] if p not in ("body",))
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
