"""The root of NetPulse's own exceptions, and the HTTP status each kind of failure means.

Every error a request can run into (a job or delivery that does not exist, a request the
server cannot carry out, a missing service) derives from :class:`NetPulseError` through one
of the classes below; ``netpulse.api.errors`` maps ``http_status`` to the reply once, so a
route raises the domain error and never builds an HTTP error itself. The message is the
sentence the client reads: it never holds a secret.

Errors of jobs on devices (``DriverError`` in ``netpulse.drivers``) are not here: they end a
job, they never reach an HTTP reply.
"""

from __future__ import annotations

from typing import ClassVar


class NetPulseError(Exception):
    """Something the caller should be told in one sentence (``str(error)``)."""

    http_status: ClassVar[int] = 500


class InvalidRequest(NetPulseError, ValueError):
    """Well-formed, but cannot be carried out as asked (the message says why)."""

    http_status = 400


class Forbidden(NetPulseError, PermissionError):
    """The caller may not do this (an API key without the scope, a credential path outside
    the provider's allowed paths); the message names what is missing."""

    http_status = 403


class NotFound(NetPulseError, LookupError):
    """The thing asked for does not exist, or expired."""

    http_status = 404


class Conflict(NetPulseError):
    """The thing exists but is in a state that forbids the operation (e.g. already ended)."""

    http_status = 409


class Unprocessable(NetPulseError, ValueError):
    """Valid JSON whose content this server cannot use (422, as validation errors are)."""

    http_status = 422


class Unavailable(NetPulseError):
    """A service the request needs is missing or busy; the same request may work later."""

    http_status = 503
    #: Seconds a client should wait before trying again (``Retry-After``), when known.
    retry_after: ClassVar[int | None] = None
