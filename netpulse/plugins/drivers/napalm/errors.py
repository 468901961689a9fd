"""Map what napalm raises to NetPulse's error types.

napalm drivers sit on other libraries (netmiko and paramiko for ios/nxos_ssh, pyeapi for eos,
junos-eznc for junos) and often wrap their errors in a generic
``ConnectionException("Cannot connect to <host>")``; the real cause (refused, bad password,
timeout, host key) is further down the exception chain, so it is read from there.
"""

from __future__ import annotations

import http.client
import socket

import paramiko
from netmiko.exceptions import NetmikoTimeoutException, ReadException, ReadTimeout, WriteException
from paramiko.ssh_exception import NoValidConnectionsError
from pyeapi.eapilib import ConnectionError as EapiConnectionError

from netpulse.drivers.base import (
    DeviceAuthenticationError,
    DeviceConnectionError,
    DeviceTimeoutError,
    DriverError,
)
from netpulse.plugins.drivers.pyeapi.errors import eapi_connection_error, exception_chain

__all__ = ["open_error", "session_error"]


def _first(chain: list[BaseException], *types: type[BaseException]) -> BaseException | None:
    return next((e for e in chain if isinstance(e, types)), None)


def _text(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_error(
    exc: BaseException, target: str, username: str | None, timeout: float
) -> DeviceConnectionError:
    """The NetPulse error for a napalm ``open()`` that failed."""
    from napalm.base.exceptions import ConnectAuthError, ConnectTimeoutError

    chain = exception_chain(exc)
    if _first(chain, paramiko.AuthenticationException, ConnectAuthError):
        return DeviceAuthenticationError(
            f"{target} refused the login for user {username!r}: {_text(exc)}"
        )
    eapi = _first(chain, EapiConnectionError)
    if eapi is not None:
        return eapi_connection_error(eapi, target, username, timeout)
    if _first(chain, ConnectionRefusedError, NoValidConnectionsError):
        return DeviceConnectionError(
            f"{target} refused the TCP connection (nothing listens there?)"
        )
    bad_key = _first(chain, paramiko.BadHostKeyException)
    if bad_key is not None:
        return DeviceConnectionError(
            f"{target}: the SSH host key does not match the known one: {_text(bad_key)}"
        )
    if _first(chain, TimeoutError, NetmikoTimeoutException, ConnectTimeoutError):
        return DeviceTimeoutError(f"{target} could not be reached in time: {_text(exc)}")
    if _first(chain, socket.gaierror):
        return DeviceConnectionError(f"{target}: cannot resolve the host name: {_text(exc)}")
    return DeviceConnectionError(
        f"{target}: napalm could not open the session: {type(exc).__name__}: {_text(exc)}"
    )


def session_error(
    exc: BaseException, target: str, what: str, username: str | None, timeout: float
) -> DriverError | None:
    """A job-level error if ``exc`` means the session broke during ``what``; else None.

    None means the device answered and refused the operation: a command-level failure
    (a result with ``exit_status != 0``), not a failed job.
    """
    from napalm.base.exceptions import CommandTimeoutException, ConnectionClosedException

    chain = exception_chain(exc)
    eapi = _first(chain, EapiConnectionError)
    if eapi is not None:
        return eapi_connection_error(eapi, target, username, timeout)
    if _first(chain, ReadTimeout, CommandTimeoutException, TimeoutError):
        return DeviceTimeoutError(f"{target}: no answer during {what}: {_text(exc)}")
    lost = _first(
        chain,
        ConnectionClosedException,
        ReadException,  # netmiko under napalm, also when a stop took the channel away
        WriteException,
        paramiko.SSHException,
        http.client.HTTPException,
        EOFError,
        OSError,
    )
    if lost is not None:
        return DeviceConnectionError(f"{target}: session lost during {what}: {_text(lost)}")
    return None
