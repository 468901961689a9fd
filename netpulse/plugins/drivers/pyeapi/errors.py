"""Why an eAPI call failed, in NetPulse's error types (shared by the pyeapi and napalm drivers).

pyeapi folds every transport failure into one ``pyeapi.eapilib.ConnectionError`` whose text
alone does not say whether the switch refused the TCP connection, rejected the password,
timed out or failed the TLS handshake. The original exception is still there, as the
``__context__`` pyeapi raised from, so the cause is read from that chain.
"""

from __future__ import annotations

import http.client
import socket
import ssl

from netpulse.drivers.base import (
    DeviceAuthenticationError,
    DeviceConnectionError,
    DeviceTimeoutError,
)

__all__ = ["eapi_connection_error", "exception_chain"]


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def eapi_connection_error(
    exc: BaseException, target: str, username: str | None, timeout: float
) -> DeviceConnectionError:
    """The NetPulse error for a failed eAPI request to ``target`` (never with credentials)."""
    text = str(exc).strip() or type(exc).__name__
    if text.startswith("Unauthorized"):
        # pyeapi's message for an HTTP 401: "<reason>. <body>".
        return DeviceAuthenticationError(
            f"{target} refused the login for user {username!r} (HTTP 401 Unauthorized)"
        )
    for cause in exception_chain(exc):
        if isinstance(cause, ConnectionRefusedError):
            return DeviceConnectionError(
                f"{target} refused the TCP connection (nothing listens there, or eAPI "
                "is not enabled: `management api http-commands`)"
            )
        if isinstance(cause, TimeoutError):
            return DeviceTimeoutError(f"{target} did not answer within {timeout:g} s")
        if isinstance(cause, ssl.SSLCertVerificationError):
            return DeviceConnectionError(
                f"{target}: the TLS certificate is not trusted ({cause.verify_message}); "
                "give ca_file, or verify=false for a self-signed switch certificate"
            )
        if isinstance(cause, ssl.SSLError):
            return DeviceConnectionError(
                f"{target}: TLS handshake failed ({cause.reason or cause}); "
                "does it serve plain http (transport: http)?"
            )
        if isinstance(cause, (http.client.RemoteDisconnected, ConnectionResetError)):
            return DeviceConnectionError(
                f"{target} closed the connection without an answer; "
                "does it serve https (transport: https)?"
            )
        if isinstance(cause, socket.gaierror):
            return DeviceConnectionError(f"{target}: cannot resolve the host name: {cause}")
        if isinstance(cause, ValueError):
            return DeviceConnectionError(
                f"{target} answered, but not with eAPI JSON-RPC (is this an eAPI endpoint?)"
            )
    return DeviceConnectionError(f"{target}: eAPI request failed: {text}")
