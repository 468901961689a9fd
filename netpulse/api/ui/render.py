"""Pages and fragments from the templates, and the one place a dashboard route's answer
gets its headers, its timing and, when it failed, its sentence.

:class:`UiRoute` wraps every dashboard route: it times the handler (``Server-Timing:
app;dur=<ms>``, what ``bench/dashboard.py`` measures), adds the security headers (a strict
Content-Security-Policy: scripts and styles from ``/ui/static`` only) and turns the refusals
a handler raises into a page (or, for htmx, a message swapped into the page's ``#flash``)
with the right status, so bad input is a 4xx sentence and never a 500.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from netpulse.api.errors import REDIS_AWAY_MESSAGE
from netpulse.api.ui.access import VIEWER_STATE, LoginRequired, Refused
from netpulse.api.ui.paths import LOGIN, PREFIX
from netpulse.errors import NetPulseError
from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS
from netpulse.webhooks.deliveries import DeliveryNotFound

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def when(value: datetime | float | int | str | None) -> str:
    """A time as the dashboard shows it: UTC, to the second ('' for none)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value, UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def pretty(value: Any) -> str:
    """Parsed data as indented JSON (anything JSON cannot say is shown with ``str``)."""
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)


ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["when"] = when
ENV.filters["pretty"] = pretty
#: A name as one path segment of a link (a node's name, a job id).
ENV.filters["segment"] = lambda value: quote(str(value), safe="")
ENV.globals["prefix"] = PREFIX


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def html(
    template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    """``template`` rendered with ``context`` (templates see ``prefix`` too)."""
    body = ENV.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers=headers)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page or a part of one, with the viewer (its name, scopes and CSRF token; None
    before login) and the path (which tab is current)."""
    viewer = getattr(request.state, VIEWER_STATE, None)
    return html(template, status, viewer=viewer, path=request.url.path, **context)


def flash(request: Request, sentence: str, status: int = 200, kind: str = "ok") -> Response:
    """A message: for htmx, swapped into the page's ``#flash``; without htmx (a plain form
    post), a page of its own with a link back."""
    if is_htmx(request):
        return html(
            "_flash.html",
            status,
            headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
            message=sentence,
            kind=kind,
        )
    back = request.headers.get("referer", "")
    back = back if _same_origin(request, back) else PREFIX + "/jobs"
    return page(request, "message.html", status, message=sentence, kind=kind, back=back)


def done(request: Request, back: str, sentence: str) -> Response:
    """An action went through: htmx gets the sentence, a plain form post goes back to
    ``back`` (post, redirect, get)."""
    if is_htmx(request):
        return flash(request, sentence)
    return RedirectResponse(back, status_code=303)


def _same_origin(request: Request, url: str) -> bool:
    return url.startswith(str(request.base_url).rstrip("/") + PREFIX + "/")


def _refusal(request: Request, exc: Exception) -> Response | None:
    """The answer to a refusal raised by a handler; None for anything else (a bug)."""
    if isinstance(exc, LoginRequired):
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": LOGIN})
        return RedirectResponse(LOGIN, status_code=303)
    if isinstance(exc, Refused):
        return flash(request, str(exc), exc.status, kind="error")
    if isinstance(exc, NetPulseError):
        return flash(request, str(exc), exc.http_status, kind="error")
    if isinstance(exc, DeliveryNotFound):
        return flash(request, str(exc), 404, kind="error")
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return flash(request, str(exc.detail), exc.status_code, kind="error")
    if isinstance(exc, REDIS_OUTAGE_ERRORS):
        log.warning("%s %s: Redis is unreachable (%s)", request.method, request.url.path, exc)
        response = flash(request, REDIS_AWAY_MESSAGE, 503, kind="error")
        response.headers["Retry-After"] = "2"
        return response
    return None


class UiRoute(APIRoute):
    """Every dashboard route: timed, with security headers, refusals shown as sentences."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except Exception as exc:
                refusal = _refusal(request, exc)
                if refusal is None:
                    raise
                response = refusal
            elapsed = (time.perf_counter() - started) * 1000
            response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return answer
