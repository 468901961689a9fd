"""Queue device jobs in RQ.

Every job runs ``netpulse.worker.task.run_device_job(req=...)`` with the RQ callbacks that
record its outcome and its webhook event (``netpulse.worker.callbacks``).
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from redis import Redis
from rq import Callback
from rq.job import Job
from rq.rate_limit import RateLimit

from netpulse.config import Settings
from netpulse.dispatch.ordered_queue import OrderedQueue
from netpulse.dispatch.rendering import render_request
from netpulse.drivers import registry as drivers
from netpulse.models.job import BulkFailure
from netpulse.models.request import BulkExecutionRequest, ExecutionRequest
from netpulse.nodes.directory import NoNodeAvailable, node_queue
from netpulse.nodes.failover import fifo_limit_key, pinned_limit_key, place_device
from netpulse.templates.contract import TemplateError

#: Callbacks are fast (one Redis script); the bound only guards against a stuck Redis.
CALLBACK_TIMEOUT = 10


PINNABLE_DRIVERS = frozenset({"netmiko", "paramiko"})


class SubmissionError(ValueError):
    """The request is valid JSON but cannot be run; the message says why."""


class NoCapacity(RuntimeError):
    """No worker node is alive to take a pinned job (503: the service, not the request)."""


def check_driver_requirements(req: ExecutionRequest) -> None:
    """Driver-specific checks (e.g. netmiko needs a device_type) before anything is queued."""
    driver = drivers.get(req.driver)
    if req.file_transfer is not None and not driver.supports_file_transfer:
        able = [n for n in drivers.names() if drivers.get(n).supports_file_transfer]
        raise SubmissionError(
            f"the {req.driver} driver cannot transfer files; use one of: {', '.join(able)}"
        )
    validate = getattr(driver, "validate_request", None)
    if validate is not None:
        try:
            validate(req)
        except ValueError as exc:
            raise SubmissionError(str(exc)) from None


def strategy_of(req: ExecutionRequest) -> str:
    """The contract's default: pinned (warm sessions) for netmiko, FIFO for the others."""
    if req.queue_strategy is not None:
        return req.queue_strategy
    return "pinned" if req.driver == "netmiko" else "fifo"


def device_key(req: ExecutionRequest) -> str:
    args = req.connection_args
    return f"{args.host}:{args.port or 22}"


def queue_and_limit(
    req: ExecutionRequest, conn: Redis, settings: Settings
) -> tuple[str, RateLimit]:
    """Where the job goes, and the per-device limit that keeps its device's jobs in order."""
    device = device_key(req)
    if strategy_of(req) == "pinned":
        if req.driver not in PINNABLE_DRIVERS:
            raise SubmissionError(
                f"queue_strategy pinned is available for {', '.join(sorted(PINNABLE_DRIVERS))}; "
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


def enqueue(req: ExecutionRequest, conn: Redis, settings: Settings) -> Job:
    """Queue one device job (its payload rendered first) and return the RQ job."""
    try:
        req = render_request(req, settings)
    except TemplateError as exc:
        raise SubmissionError(str(exc)) from None
    check_driver_requirements(req)
    queue_name, limit = queue_and_limit(req, conn, settings)
    queue = OrderedQueue(queue_name, connection=conn)
    lines = req.lines()
    return queue.enqueue_call(
        "netpulse.worker.task.run_device_job",
        kwargs={"req": req},
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
            "device": device_key(req),
            "strategy": strategy_of(req),
        },
        rate_limit=limit,
        # Success needs a callback only to notify; failures always record their cause.
        on_success=Callback("netpulse.worker.callbacks.on_job_success", CALLBACK_TIMEOUT)
        if req.webhook is not None
        else None,
        on_failure=Callback("netpulse.worker.callbacks.on_job_failure", CALLBACK_TIMEOUT),
        on_stopped=Callback("netpulse.worker.callbacks.on_job_stopped", CALLBACK_TIMEOUT),
    )


def expand_bulk(bulk: BulkExecutionRequest) -> tuple[list[ExecutionRequest], list[BulkFailure]]:
    """One request per device: shared fields, then the device's own overrides."""
    shared = bulk.model_dump(exclude={"devices"}, exclude_unset=True, by_alias=True)
    if bulk.webhook is not None:
        shared["webhook"] = bulk.webhook
    base_args = shared.pop("connection_args", None) or {}
    if not isinstance(base_args, dict):
        base_args = base_args.model_dump(exclude_none=True)
    good: list[ExecutionRequest] = []
    bad: list[BulkFailure] = []
    for index, device in enumerate(bulk.devices):
        host = str(device.get("host") or f"devices[{index}]")
        overrides = {k: v for k, v in device.items() if k not in ("command", "config")}
        body: dict[str, Any] = {**shared, "connection_args": {**base_args, **overrides}}
        for field in ("command", "config"):
            if device.get(field) is not None:
                body.pop("command", None)
                body.pop("config", None)
                body[field] = device[field]
        try:
            req = ExecutionRequest.model_validate(body)
            check_driver_requirements(req)
        except ValidationError as exc:
            bad.append(BulkFailure(host=host, reason=describe_validation_error(exc)))
            continue
        except SubmissionError as exc:
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
