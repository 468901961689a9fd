"""Who is looking at the dashboard, and what they may do.

Every page depends on :func:`viewer` (the session of the cookie, else the login page);
every action (a POST) also on :func:`acting`, which checks the CSRF token (a hidden form
field, or the ``X-CSRF-Token`` header htmx sends from ``hx-headers``). Scopes are the API's:
each page or action names the one its API route needs (``needs``), so the dashboard never
lets a key do what the API would refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from netpulse.api.ui import store
from netpulse.api.ui.paths import COOKIE
from netpulse.security.api_keys import Principal, Scope

#: The header htmx sends the CSRF token in (``hx-headers`` on the page's body).
CSRF_HEADER = "x-csrf-token"
#: The hidden form field that carries it when a form is posted without htmx.
CSRF_FIELD = "csrf_token"
#: Where a page leaves its viewer for the error page (``render.py``).
VIEWER_STATE = "ui_viewer"


class LoginRequired(Exception):
    """No live session: a page goes to the login form, an action is refused."""


class Refused(Exception):
    """A sentence for the person at the browser, with its status (4xx, or 503)."""

    def __init__(self, status: int, sentence: str) -> None:
        super().__init__(sentence)
        self.status = status


@dataclass(frozen=True)
class Viewer:
    session: store.UiSession

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def principal(self) -> Principal:
        return self.session.principal()

    @property
    def csrf(self) -> str:
        return self.session.csrf

    def may(self, scope: Scope) -> bool:
        return self.principal.allows(scope)

    def scope_names(self) -> list[str]:
        return sorted(s.value for s in self.session.scopes)


def _load(request: Request) -> Viewer:
    state = request.app.state
    session = store.load_session(state.redis, request.cookies.get(COOKIE), state.api_key)
    if session is None:
        raise LoginRequired()
    viewer = Viewer(session)
    setattr(request.state, VIEWER_STATE, viewer)
    return viewer


def viewer(request: Request) -> Viewer:
    """A page's dependency: the logged-in viewer (FastAPI runs it on a worker thread)."""
    return _load(request)


def needs(viewer: Viewer, what: str, *scopes: Scope) -> None:
    """Refuse (403) unless the viewer's key has one of ``scopes`` (or ``admin``); ``what``
    completes the sentence: "... lacks the 'exec' scope that <what> needs"."""
    if not any(viewer.may(scope) for scope in scopes):
        wanted = " or ".join(repr(scope.value) for scope in scopes)
        raise Refused(
            403,
            f"the API key {viewer.name!r} lacks the {wanted} scope that {what} needs "
            f"(it has: {', '.join(viewer.scope_names()) or 'none'})",
        )


async def acting(request: Request) -> Viewer:
    """An action's dependency: a live session and its CSRF token, else 403 with a sentence.
    Returns the viewer; the form, if any, is read here (the guard has buffered it)."""
    try:
        found = await run_in_threadpool(_load, request)
    except LoginRequired:
        raise Refused(403, "you are not logged in (or your session ended): log in again") from None
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and _is_form(request):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not store.csrf_matches(found.session, sent):
        raise Refused(
            403,
            "this action's CSRF token is missing or wrong; reload the page and try again",
        )
    return found


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "").lower()
    return kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


async def form_text(request: Request, name: str, limit: int = 500) -> str:
    """A text field of a posted form ('' when absent); 422 when longer than ``limit``."""
    if not _is_form(request):
        return ""
    value = (await request.form()).get(name)
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > limit:
        raise Refused(422, f"{name} is longer than {limit} characters")
    return text
