"""Turn whatever ended a job into the contract's `{type, message}` error."""

from __future__ import annotations

from rq.timeouts import JobTimeoutException

from netpulse.drivers.base import DriverError
from netpulse.models.job import JobError, JobErrorType


def error_from_exception(exc: BaseException | None, timeout: float | None = None) -> JobError:
    """A person-readable error for an exception raised by (or around) a device job."""
    if isinstance(exc, DriverError):
        # A third-party driver's type outside the list is reported as a driver error.
        kind = exc.error_type if exc.error_type in set(JobErrorType) else "driver_error"
        return JobError(type=JobErrorType(kind), message=str(exc))
    if isinstance(exc, JobTimeoutException):
        limit = f" of {timeout} s" if timeout else ""
        return JobError(
            type=JobErrorType.TIMEOUT, message=f"the job exceeded its execution timeout{limit}"
        )
    name = type(exc).__name__ if exc is not None else "Error"
    if name == "AbandonedJobError":
        return JobError(
            type=JobErrorType.WORKER_LOST,
            message="the worker running this job died before it finished (job abandoned)",
        )
    text = str(exc).strip() if exc is not None else ""
    return JobError(type=JobErrorType.EXCEPTION, message=f"{name}: {text}" if text else name)
