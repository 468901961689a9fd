"""API-key authentication: one header, compared in constant time, 403 when wrong.

Checked first of all by :class:`netpulse.api.guard.RequestGuard` (before a body is read) and
again by :func:`require_api_key` on every secured router, so a route is never open by a
mistake in one of the two.
"""

from __future__ import annotations

import secrets

from fastapi import HTTPException, Request, status

#: The only paths served without the key: probes and the API's own description.
OPEN_PATHS = frozenset(
    {"/health", "/health/ready", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)


def key_matches(given: bytes | str | None, expected: str) -> bool:
    """Whether the key sent is the key, in time that does not depend on where they differ."""
    if not given:
        return False
    sent = given if isinstance(given, bytes) else given.encode("utf-8", "surrogateescape")
    return secrets.compare_digest(sent, expected.encode())


def missing_key_message(header: str) -> str:
    return f"missing or wrong API key: send it in the {header} header"


def require_api_key(request: Request) -> None:
    settings = request.app.state.settings
    given = request.headers.get(settings.server.api_key_header)
    if not key_matches(given, request.app.state.api_key):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, missing_key_message(settings.server.api_key_header)
        )
