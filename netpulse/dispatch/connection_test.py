"""``POST /device/test``'s work: log in to a device and out again, in the calling thread.

The controller runs it on threads of its own (``api/device_tests.py``), a few at a time.
"""

from __future__ import annotations

from typing import Any

from netpulse import credentials
from netpulse.credentials import CredentialError
from netpulse.drivers import registry as drivers
from netpulse.drivers.base import DriverError, logged_in_as
from netpulse.errors import Unprocessable
from netpulse.models.credential import CredentialRef
from netpulse.models.request import ConnectionArgs


def check_connection(
    driver: str, args: ConnectionArgs, credential: CredentialRef | None = None
) -> None:
    """What the driver needs to log in; Unprocessable (422) says what is missing."""
    if credential is not None:
        credentials.check(credential)  # 422 unknown provider, 403 outside allowed paths
    try:
        drivers.get(driver).validate_connection(logged_in_as(args, credential))
    except ValueError as exc:
        raise Unprocessable(str(exc)) from None


def log_in_and_out(
    driver: str, args: ConnectionArgs, credential: CredentialRef | None = None
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """Connect, probe, disconnect: what the probe reported, and the error (None when the
    login worked). A device that cannot be reached or refuses, or a credential that cannot
    be read, is an error, not a raise."""
    try:
        if credential is not None:
            args = credentials.fill(args, credential, driver)
    except CredentialError as exc:
        return {}, {"type": exc.error_type, "message": str(exc)}
    session = drivers.get(driver)(args, {})
    try:
        session.connect()
        try:
            return session.probe(), None
        finally:
            session.disconnect()
    except DriverError as exc:
        return {}, {"type": exc.error_type, "message": str(exc)}
