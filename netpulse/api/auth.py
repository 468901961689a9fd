"""API-key authentication: one header, compared in constant time, 403 when wrong."""

from __future__ import annotations

import secrets

from fastapi import HTTPException, Request, status


def require_api_key(request: Request) -> None:
    settings = request.app.state.settings
    expected = request.app.state.api_key
    given = request.headers.get(settings.server.api_key_header)
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"missing or wrong API key: send it in the {settings.server.api_key_header} header",
        )
