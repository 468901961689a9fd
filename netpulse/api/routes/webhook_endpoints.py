"""`/webhooks/endpoints` and `/webhooks/event-types`: standing subscriptions and the
events they can choose from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, status
from redis import Redis

from netpulse.api.auth import needs
from netpulse.api.deps import get_app_settings, get_redis
from netpulse.config import Settings
from netpulse.dispatch.intake import checked, rechecked
from netpulse.models.endpoint import ENDPOINT_ID, EndpointPatch, EndpointSpec
from netpulse.models.events import DEFAULT_SUBSCRIPTION, EVENT_TYPES
from netpulse.security.api_keys import Scope
from netpulse.webhooks import payload
from netpulse.webhooks.endpoints import catalogue

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

ENDPOINT = Path(..., pattern=ENDPOINT_ID.pattern, description="The endpoint's id.")


@router.get("/event-types", dependencies=[needs(Scope.READ)])
def event_types() -> list[dict[str, Any]]:
    """Every event type: what it means, whether endpoints get it without asking, the JSON
    Schema of its payload and a sample."""
    return [
        {
            "type": name,
            "description": description,
            "default": name in DEFAULT_SUBSCRIPTION,
            "schema": model.model_json_schema(),
            "sample": payload.sample(name),
        }
        for name, (model, description) in EVENT_TYPES.items()
    ]


@router.get("/endpoints", dependencies=[needs(Scope.READ)])
def list_endpoints(
    conn: Redis = Depends(get_redis), settings: Settings = Depends(get_app_settings)
) -> list[dict[str, Any]]:
    """Every endpoint (the settings file's first), with its health."""
    return catalogue.list_views(conn, settings)


@router.post("/endpoints", status_code=status.HTTP_201_CREATED, dependencies=[needs(Scope.ADMIN)])
def create_endpoint(
    body: EndpointSpec,
    conn: Redis = Depends(get_redis),
    settings: Settings = Depends(get_app_settings),
) -> dict[str, Any]:
    """Subscribe a URL to events; every matching event becomes its own delivery."""
    return catalogue.create(conn, rechecked(body), settings)


@router.get("/endpoints/{endpoint_id}", dependencies=[needs(Scope.READ)])
def get_endpoint(
    endpoint_id: str = ENDPOINT,
    conn: Redis = Depends(get_redis),
    settings: Settings = Depends(get_app_settings),
) -> dict[str, Any]:
    return catalogue.get_view(conn, endpoint_id, settings)


@router.patch("/endpoints/{endpoint_id}", dependencies=[needs(Scope.ADMIN)])
def update_endpoint(
    body: EndpointPatch,
    endpoint_id: str = ENDPOINT,
    conn: Redis = Depends(get_redis),
    settings: Settings = Depends(get_app_settings),
) -> dict[str, Any]:
    """Change some fields (secrets not given are kept). `{"enabled": true, "replay_held":
    true}` enables a disabled endpoint and sends the events held meanwhile."""
    return catalogue.update(
        conn, endpoint_id, body, settings, validate=lambda data: checked(EndpointSpec, data)
    )


@router.delete(
    "/endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[needs(Scope.ADMIN)],
)
def delete_endpoint(
    endpoint_id: str = ENDPOINT,
    conn: Redis = Depends(get_redis),
    settings: Settings = Depends(get_app_settings),
) -> None:
    """Remove an endpoint; events it held are marked failed (still redeliverable)."""
    catalogue.delete(conn, endpoint_id, settings)
