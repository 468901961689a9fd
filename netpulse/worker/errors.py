"""Turn whatever ended a job into the contract's `{type, message}` error."""

from __future__ import annotations

from rq.timeouts import JobTimeoutException

from netpulse.drivers.base import DriverError
from netpulse.models.job import JobError


def error_from_exception(exc: BaseException | None, timeout: int | None = None) -> JobError:
    """A person-readable error for an exception raised by (or around) a device job."""
    if isinstance(exc, DriverError):
        return JobError(type=exc.error_type, message=str(exc))
    if isinstance(exc, JobTimeoutException):
        limit = f" of {timeout} s" if timeout else ""
        return JobError(type="timeout", message=f"the job exceeded its execution timeout{limit}")
    name = type(exc).__name__ if exc is not None else "Error"
    if name == "AbandonedJobError":
        return JobError(
            type="worker_lost",
            message="the worker running this job died before it finished (job abandoned)",
        )
    text = str(exc).strip() if exc is not None else ""
    return JobError(type="exception", message=f"{name}: {text}" if text else name)


def error_from_exc_string(exc_string: str | None) -> JobError:
    """Best-effort error for a failure RQ only kept as a traceback string."""
    lines = [line for line in (exc_string or "").strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "the job failed"
    if "Work-horse terminated unexpectedly" in (exc_string or ""):
        return JobError(type="worker_killed", message=last)
    if "stopped" in last.lower():
        return JobError(type="stopped", message=last)
    return JobError(type="exception", message=last)
