"""Webhook endpoints (standing subscriptions) with their health: failing since, failed
deliveries in a row, held events, disabled and why.

The view is ``GET /webhooks/endpoints``'s (``catalogue.list_views``): header and cookie
names without values, whether a signing secret is set, never the secret.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from netpulse.api.ui.access import Viewer, needs, viewer
from netpulse.api.ui.paths import PREFIX
from netpulse.api.ui.render import UiRoute, page
from netpulse.security.api_keys import Scope
from netpulse.webhooks.endpoints import catalogue

router = APIRouter(prefix=PREFIX + "/endpoints", route_class=UiRoute)


@router.get("")
def endpoints_page(request: Request, who: Viewer = Depends(viewer)) -> Response:
    needs(who, "reading webhook endpoints", Scope.READ)
    state = request.app.state
    found = catalogue.list_views(state.redis, state.settings)
    return page(request, "endpoints.html", endpoints=found)
