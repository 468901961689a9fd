"""API keys: who is calling (checked before a body is read) and whether the key's scopes
allow the route (checked per route).

:class:`netpulse.api.guard.RequestGuard` resolves the key first of all (:func:`identify`),
in constant time for the settings' key and by digest for scoped keys
(:mod:`netpulse.security.api_keys`), and leaves the :class:`Principal` in the request's
state. Each secured router then requires a principal (:func:`require_api_key`), so a route is
never open by a mistake in one of the two, and each route names the scope it needs
(:func:`needs`); a route whose scope depends on the body (a job that changes the device
needs ``config``) asks again with :func:`require_scope` once the body is parsed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from anyio import to_thread
from fastapi import Depends, HTTPException, Request, status
from redis import Redis

from netpulse.security.api_keys import (
    KEY_PREFIX,
    SETTINGS_PRINCIPAL,
    Principal,
    Scope,
    lookup,
)

#: The only paths served without the key: probes and the API's own description.
OPEN_PATHS = frozenset(
    {"/health", "/health/ready", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
#: Where the guard leaves the caller in the ASGI scope's state.
PRINCIPAL_STATE = "principal"
_PREFIX = KEY_PREFIX.encode()


def key_matches(given: bytes | str | None, expected: str) -> bool:
    """Whether the key sent is the key, in time that does not depend on where they differ."""
    if not given:
        return False
    sent = given if isinstance(given, bytes) else given.encode("utf-8", "surrogateescape")
    return secrets.compare_digest(sent, expected.encode())


async def identify(given: bytes | None, settings_key: str, conn: Redis) -> Principal | None:
    """Who sent ``given``: the settings' key (every scope), a stored scoped key, or nobody.
    Only a value shaped like a made key costs a Redis lookup (run off the event loop)."""
    if key_matches(given, settings_key):
        return SETTINGS_PRINCIPAL
    if not given or not given.startswith(_PREFIX):
        return None
    key = given.decode("utf-8", "surrogateescape")
    return await to_thread.run_sync(lookup, conn, key)


def missing_key_message(header: str) -> str:
    return f"missing or wrong API key: send it in the {header} header"


def principal_of(request: Request) -> Principal:
    principal = request.scope.get("state", {}).get(PRINCIPAL_STATE)
    if not isinstance(principal, Principal):
        header = request.app.state.settings.server.api_key_header
        raise HTTPException(status.HTTP_403_FORBIDDEN, missing_key_message(header))
    return principal


def require_api_key(request: Request) -> None:
    """Every secured router: the guard identified the caller."""
    principal_of(request)


def require_scope(request: Request, *scopes: Scope) -> Principal:
    """The caller, when its key has one of ``scopes`` (or ``admin``); else 403 naming them."""
    principal = principal_of(request)
    if not any(principal.allows(scope) for scope in scopes):
        wanted = " or ".join(repr(scope.value) for scope in scopes)
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"the API key {principal.name!r} lacks the {wanted} scope that "
            f"{request.method} {request.url.path} needs (it has: "
            f"{', '.join(sorted(s.value for s in principal.scopes)) or 'none'})",
        )
    return principal


def needs(*scopes: Scope) -> Any:
    """A route's dependency: the caller's key must have one of ``scopes``. They are kept on
    the dependency so the OpenAPI document can say them (``x-scopes``)."""

    def check(request: Request) -> Principal:
        return require_scope(request, *scopes)

    check.scopes = scopes  # type: ignore[attr-defined]
    return Depends(check)


def scopes_of(dependency: Callable[..., Any]) -> tuple[Scope, ...]:
    """The scopes a dependency made by :func:`needs` accepts (empty for any other)."""
    return getattr(dependency, "scopes", ())
