"""The function every device job runs (`netpulse.worker.task.run_device_job`).

It is what RQ imports and calls, with the original request as ``req``
(``job.kwargs["req"]``, where the webhook callbacks find it too). On a worker node the
session comes from the node's pool and stays open after the job; elsewhere the job connects
and disconnects.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from socket import gethostname
from typing import Any

from rq import get_current_job

from netpulse import credentials
from netpulse.config import get_settings
from netpulse.credentials import CredentialError
from netpulse.detached.launch import launch
from netpulse.drivers import registry as drivers
from netpulse.drivers.base import BaseDriver, DriverError
from netpulse.drivers.options import confined_path
from netpulse.models.job import DriverExecutionResult, JobErrorType
from netpulse.models.request import ExecutionRequest
from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS
from netpulse.security.sealing import SealError, open_request
from netpulse.sessions.pool import SessionPool
from netpulse.storage import files
from netpulse.templates import sandbox
from netpulse.webhooks.outbox.record import record_started_event
from netpulse.worker.parsing import parse_results

log = logging.getLogger(__name__)

#: The session pool of the worker node this process runs (None in FIFO work-horses): set by
#: the node process (``nodes/process.py``) before its job threads start, so this module never
#: imports the node.
_node_pool: SessionPool | None = None


def use_session_pool(pool: SessionPool | None) -> None:
    """Make this process's device jobs lease warm sessions from ``pool`` (a worker node)."""
    global _node_pool
    _node_pool = pool


def run_device_job(req: ExecutionRequest) -> list[dict[str, Any]]:
    """Run the request's commands or config on its device; return one result each.

    Raises the driver's ``DriverError`` when the device cannot be reached or refuses the
    login, so RQ marks the job failed; a command the device rejects is a result with
    ``exit_status != 0`` instead.
    """
    sealed = req
    _say_started(sealed)
    try:
        req = open_request(req)  # the secrets, for this process's memory only
        if req.credential is not None:  # read here, when the job runs: never queued
            req = req.model_copy(
                update={
                    "connection_args": credentials.fill(
                        req.connection_args, req.credential, req.driver
                    )
                }
            )
    except (SealError, CredentialError) as exc:
        raise SecretUnreadable(str(exc)) from None
    pool = _node_pool
    if pool is not None:
        job = get_current_job()
        # A node's job threads share one process: their parsing goes to its sandbox.
        with pool.lease(req, job.id if job else None) as driver:
            return _run(driver, req, sandbox.shared(get_settings()), sealed)
    driver = drivers.get(req.driver)(req.connection_args, req.driver_args)
    driver.connect()
    try:
        return _run(driver, req, None, sealed)
    except BaseException:
        # Timeout, stop or error mid-command: close the session at once rather than log out
        # politely, which would wait for a device still answering (past the job's timeout).
        driver.abort()
        raise
    finally:
        driver.disconnect()


def _say_started(req: ExecutionRequest) -> None:
    """``job.started`` for a webhook or endpoint that asked for it: one Redis transaction,
    before the device is reached. A failure to record it is logged and never fails or delays
    the job."""
    job = get_current_job()
    if job is None:
        return
    try:
        record_started_event(
            job.connection,
            job_id=job.id,
            req=req,
            meta=job.meta or {},
            created_at=job.created_at,
            started_at=job.started_at or datetime.now(UTC),
        )
    except REDIS_OUTAGE_ERRORS as exc:
        log.warning("job %s: its job.started event could not be recorded (%s)", job.id, exc)
    except Exception:
        log.exception("job %s: its job.started event could not be recorded", job.id)


class SecretUnreadable(DriverError):
    """The job's credential cannot be read, or a sealed secret no key of this process
    opens."""

    error_type = JobErrorType.CREDENTIAL_ERROR


class LocalFileMissing(DriverError):
    """``file_transfer.local_path`` names no readable file on the worker."""

    error_type = JobErrorType.FILE_MISSING


class StagedFileMissing(DriverError):
    """The job's staged upload expired or was never stored."""

    error_type = JobErrorType.FILE_MISSING


def _run(
    driver: BaseDriver,
    req: ExecutionRequest,
    parse_in: sandbox.TemplateSandbox | None,
    sealed: ExecutionRequest,
) -> list[dict[str, Any]]:
    if req.detach:
        job = get_current_job()
        if job is None:
            raise RuntimeError("detached tasks are launched by RQ jobs (they are kept in Redis)")
        submitted_by = (job.meta or {}).get("submitted_by")
        return launch(driver, req, sealed, job.id, job.connection, get_settings(), submitted_by)
    if req.file_transfer is not None:
        return [row.model_dump() for row in _transfer(driver, req)]
    results = driver.execute(req)
    if req.parsing is not None:
        parse_results(req, results, parse_in)
    return [r.model_dump() for r in results]


def _transfer(driver: BaseDriver, req: ExecutionRequest) -> list[DriverExecutionResult]:
    """Move a staged upload (or a file of the worker's, ``local_path``) to the device, or
    stage a download for the client; the rows of the transfer."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("file transfers run as RQ jobs (they stage files in Redis)")
    spec = req.file_transfer
    assert spec is not None
    if spec.local_path is not None:
        # Confined again here: the worker may be another host than the controller.
        try:
            spec = spec.model_copy(update={"local_path": confined_path(spec.local_path)})
        except ValueError as exc:
            raise LocalFileMissing(f"file_transfer.local_path {exc}") from None
    data = None
    if spec.operation == "upload" and req.staged_file_id:
        found = files.read(job.connection, req.staged_file_id)
        if found is None:
            raise StagedFileMissing(
                f"the uploaded file {req.staged_file_id} expired before the job ran"
            )
        data = found[1]
    elif spec.operation == "upload" and not spec.recursive:
        data = _local_file(spec.local_path or "")
    outcome = driver.transfer(spec, data)
    if outcome.downloaded is not None and not spec.recursive:
        keep = max(job.result_ttl or 0, 300)
        staged = files.stage(job.connection, outcome.downloaded, name=spec.remote_path, ttl=keep)
        outcome.rows[0].download_url = staged.download_url
        outcome.rows[0].metadata["file_id"] = staged.id
    return outcome.rows


def _local_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise LocalFileMissing(
            f"file_transfer.local_path {path}: {exc.strerror or exc} (on worker {gethostname()})"
        ) from None
