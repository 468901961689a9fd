"""Log in with an API key, log out; and the dashboard's two static files.

The key is checked exactly as the API checks its header (``api.auth.identify``: the
settings' key in constant time, a made key by digest); then a session is stored
(``store.py``) and its id set as a cookie: HttpOnly (no script reads it), SameSite=Strict
(no other site's page sends it), Path=/ui (the API never sees it), Secure when the request
came over https. The key is not kept anywhere.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse

from netpulse.api.auth import identify
from netpulse.api.ui import store
from netpulse.api.ui.access import Refused, Viewer, acting, form_text
from netpulse.api.ui.paths import COOKIE, HOME, LOGIN, PREFIX
from netpulse.api.ui.render import UiRoute, page
from netpulse.security.api_keys import Scope

router = APIRouter(route_class=UiRoute)

STATIC = Path(__file__).resolve().parent / "static"
#: The only files served from ``/ui/static`` (no path is ever taken from the request).
STATIC_FILES = {
    "htmx.min.js": "text/javascript",
    "dashboard.css": "text/css",
}
#: Longest key accepted in the form (made keys have 47 characters).
MAX_KEY_LENGTH = 512


@router.get(PREFIX)
def home() -> RedirectResponse:
    return RedirectResponse(HOME, status_code=303)


@router.get(LOGIN)
def login_form(request: Request) -> Response:
    return page(request, "login.html", error=None)


@router.post(LOGIN)
async def login(request: Request) -> Response:
    """Check the key as the API does; a session and its cookie, or the form again (403)."""
    key = await form_text(request, "api_key", limit=MAX_KEY_LENGTH)
    state = request.app.state
    principal = await identify(key.encode("utf-8", "surrogateescape"), state.api_key, state.redis)
    if principal is None:
        return page(
            request,
            "login.html",
            403,
            error="That API key is not valid (unknown, revoked or mistyped).",
        )
    try:
        session_id, _ = await run_in_threadpool(
            store.open_session, state.redis, principal, state.api_key
        )
    except LookupError as exc:
        raise Refused(403, str(exc)) from None
    # A key that may not read jobs but may read the audit trail starts there.
    start = HOME
    if not principal.allows(Scope.READ) and principal.allows(Scope.AUDIT):
        start = PREFIX + "/audit"
    response = RedirectResponse(start, status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=store.SESSION_SECONDS,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post(PREFIX + "/logout")
async def logout(request: Request, who: Viewer = Depends(acting)) -> Response:
    """Forget the session in Redis and in the browser."""
    await run_in_threadpool(store.close_session, request.app.state.redis, request.cookies[COOKIE])
    response = RedirectResponse(LOGIN, status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


@router.get(PREFIX + "/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC_FILES:
        raise Refused(404, f"no static file {name!r}")
    return FileResponse(
        STATIC / name,
        media_type=STATIC_FILES[name],
        headers={"Cache-Control": "public, max-age=3600"},
    )
