"""Webhook deliveries: the log filtered by state, one delivery's attempt log, Redeliver
and Recover-since.

Everything is ``webhooks.deliveries``, what ``/webhooks/deliveries`` and
``/webhooks/recover`` call: a delivery's view holds no header, cookie, auth, secret or body,
so no secret reaches a page, as none reaches the API.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from netpulse.api.ui.access import Refused, Viewer, acting, form_text, needs, viewer
from netpulse.api.ui.paths import PREFIX
from netpulse.api.ui.render import UiRoute, done, is_htmx, page
from netpulse.security.api_keys import Scope
from netpulse.webhooks import deliveries

router = APIRouter(prefix=PREFIX, route_class=UiRoute)

#: The states a delivery can be listed by (``GET /webhooks/deliveries?status=``).
STATES = ("pending", "failed", "succeeded", "held")
#: Deliveries on one page, newest first.
PAGE_SIZE = 100
MAX_DELIVERY_ID = 128
_SINCE = TypeAdapter(AwareDatetime)


def _state(request: Request) -> str | None:
    state = (request.query_params.get("status") or "").strip()
    if state and state not in STATES:
        raise Refused(400, f"unknown delivery status {state[:50]!r}; valid: {', '.join(STATES)}")
    return state or None


def _listing(request: Request) -> dict[str, Any]:
    state = _state(request)
    found = deliveries.search(request.app.state.redis, state, None, PAGE_SIZE)
    return {"deliveries": found, "state": state or "", "page_size": PAGE_SIZE}


@router.get("/deliveries")
def deliveries_page(request: Request, who: Viewer = Depends(viewer)) -> Response:
    needs(who, "reading webhook deliveries", Scope.READ)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    return page(
        request,
        "deliveries.html",
        states=STATES,
        since_default=hour_ago.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **_listing(request),
    )


@router.get("/deliveries/rows")
def delivery_rows(request: Request, who: Viewer = Depends(viewer)) -> Response:
    needs(who, "reading webhook deliveries", Scope.READ)
    return page(request, "_delivery_rows.html", **_listing(request))


def _delivery(request: Request, delivery_id: str) -> dict[str, Any]:
    if len(delivery_id) > MAX_DELIVERY_ID:
        raise Refused(404, "no webhook delivery with so long an id")
    found = deliveries.get(request.app.state.redis, delivery_id)
    return {"delivery": found, "live": found["state"] == "pending"}


@router.get("/deliveries/{delivery_id}")
def delivery_page(delivery_id: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    needs(who, "reading webhook deliveries", Scope.READ)
    return page(request, "delivery.html", **_delivery(request, delivery_id))


@router.get("/deliveries/{delivery_id}/panel")
def delivery_panel(delivery_id: str, request: Request, who: Viewer = Depends(viewer)) -> Response:
    """The delivery and its attempt log: fetched every 2 s while it is pending."""
    needs(who, "reading webhook deliveries", Scope.READ)
    return page(request, "_delivery_panel.html", **_delivery(request, delivery_id))


@router.post("/deliveries/{delivery_id}/redeliver")
async def redeliver(delivery_id: str, request: Request, who: Viewer = Depends(acting)) -> Response:
    """As ``POST /webhooks/deliveries/{id}/redeliver`` (needs admin): the same event, the
    same webhook-id, now, with a fresh retry budget. The page's panel follows it."""
    needs(who, "redelivering a webhook", Scope.ADMIN)
    if len(delivery_id) > MAX_DELIVERY_ID:
        raise Refused(404, "no webhook delivery with so long an id")
    await run_in_threadpool(deliveries.redeliver, request.app.state.redis, delivery_id)
    back = f"{PREFIX}/deliveries/{delivery_id}"
    if is_htmx(request):
        # The panel again, now pending, so it polls until the new attempt is logged.
        found = await run_in_threadpool(_delivery, request, delivery_id)
        return page(request, "_delivery_panel.html", flash="Redelivery queued.", **found)
    return done(request, back, "Redelivery queued.")


@router.post("/deliveries/recover")
async def recover(request: Request, who: Viewer = Depends(acting)) -> Response:
    """As ``POST /webhooks/recover`` (needs admin): redeliver every failed delivery created
    since a time with a zone."""
    needs(who, "recovering webhook deliveries", Scope.ADMIN)
    text = await form_text(request, "since", limit=64)
    try:
        since = _SINCE.validate_python(text)
    except ValidationError:
        raise Refused(
            422, f"since must be a time with a zone, like 2026-12-07T09:00:00Z (got {text!r})"
        ) from None
    ids = await run_in_threadpool(deliveries.recover, request.app.state.redis, since.timestamp())
    what = "delivery" if len(ids) == 1 else "deliveries"
    sentence = f"Redelivered {len(ids)} failed {what} created since {since.isoformat()}."
    return done(request, f"{PREFIX}/deliveries", sentence)
