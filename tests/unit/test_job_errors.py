"""What ended a job, as the contract's ``{type, message}``: from the exception where it was
raised (``worker/errors.py``), and from RQ's traceback text when nothing else was kept
(``api/views.py``)."""

from __future__ import annotations

from rq.timeouts import JobTimeoutException

from netpulse.api.views import error_from_exc_string
from netpulse.drivers.base import DeviceAuthenticationError, DriverError
from netpulse.worker.errors import error_from_exception


class ThirdPartyError(DriverError):
    error_type = "vendor_specific"  # type: ignore[assignment]


class AbandonedJobError(Exception):
    """Named as RQ's own, which the worker cannot import by class."""


def test_driver_errors_keep_their_type_and_message() -> None:
    error = error_from_exception(DeviceAuthenticationError("10.0.0.1:22: login refused"))
    assert (error.type, error.message) == ("authentication", "10.0.0.1:22: login refused")


def test_a_type_outside_the_list_is_reported_as_a_driver_error() -> None:
    assert error_from_exception(ThirdPartyError("odd")).type == "driver_error"


def test_the_execution_timeout_names_the_limit() -> None:
    error = error_from_exception(JobTimeoutException("late"), timeout=30)
    assert error.type == "timeout" and "of 30 s" in error.message


def test_an_abandoned_job_is_a_lost_worker() -> None:
    assert error_from_exception(AbandonedJobError()).type == "worker_lost"


def test_anything_else_is_an_exception_named_with_its_text() -> None:
    error = error_from_exception(KeyError("x"))
    assert (error.type, error.message) == ("exception", "KeyError: 'x'")
    assert error_from_exception(None).message == "Error"


def test_traceback_text_is_read_for_kills_stops_and_the_rest() -> None:
    killed = "Traceback...\nWork-horse terminated unexpectedly; waitpid returned 9\n"
    assert error_from_exc_string(killed).type == "worker_killed"
    stopped = error_from_exc_string("Traceback...\nStopJobException: Job stopped by user\n")
    assert stopped.type == "stopped"
    other = error_from_exc_string("Traceback (most recent call last):\n  ...\nValueError: bad\n")
    assert (other.type, other.message) == ("exception", "ValueError: bad")
    assert error_from_exc_string(None).message == "the job failed"
