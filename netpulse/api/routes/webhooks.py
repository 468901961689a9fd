"""`/webhooks`: the delivery log, redelivery and recovery."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import AwareDatetime, BaseModel
from redis import Redis

from netpulse.api.auth import needs
from netpulse.api.deps import get_app_settings, get_redis
from netpulse.config import Settings
from netpulse.security.api_keys import Scope
from netpulse.webhooks import deliveries
from netpulse.webhooks.signing import public_key_of

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _not_found(exc: deliveries.DeliveryNotFound) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))


@router.get("/deliveries", dependencies=[needs(Scope.READ)])
def list_deliveries(
    state: Literal["pending", "succeeded", "failed", "held"] | None = Query(None, alias="status"),
    since: AwareDatetime | None = Query(
        None, description="ISO 8601 time with a time zone; deliveries created since."
    ),
    limit: int = Query(100, ge=1, le=1000),
    conn: Redis = Depends(get_redis),
) -> list[dict[str, Any]]:
    return deliveries.search(conn, state, since.timestamp() if since else None, limit)


@router.get("/deliveries/{delivery_id}", dependencies=[needs(Scope.READ)])
def get_delivery(delivery_id: str, conn: Redis = Depends(get_redis)) -> dict[str, Any]:
    try:
        return deliveries.get(conn, delivery_id)
    except deliveries.DeliveryNotFound as exc:
        raise _not_found(exc) from None


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[needs(Scope.ADMIN)],
)
def redeliver(delivery_id: str, conn: Redis = Depends(get_redis)) -> dict[str, Any]:
    """Send the event again with the same webhook-id."""
    try:
        return deliveries.redeliver(conn, delivery_id)
    except deliveries.DeliveryNotFound as exc:
        raise _not_found(exc) from None


class RecoverRequest(BaseModel):
    #: With a time zone: a time without one would be read in the server's local time.
    since: AwareDatetime


@router.post("/recover", status_code=status.HTTP_202_ACCEPTED, dependencies=[needs(Scope.ADMIN)])
def recover(body: RecoverRequest, conn: Redis = Depends(get_redis)) -> dict[str, Any]:
    """Redeliver every failed delivery created since a time."""
    ids = deliveries.recover(conn, body.since.timestamp())
    return {"redelivered": ids, "count": len(ids)}


@router.get("/signing-keys", dependencies=[needs(Scope.READ)])
def signing_keys(settings: Settings = Depends(get_app_settings)) -> dict[str, Any]:
    """The public keys receivers verify ``v1a`` (Ed25519) signatures with: one per
    ``webhooks.asymmetric_signing_keys`` entry, every one of which signs each event (so a
    receiver keeps verifying while a key is rotated)."""
    return {
        "keys": [
            {
                "public_key": public_key_of(key.get_secret_value()),
                "algorithm": "ed25519",
                "signature_version": "v1a",
            }
            for key in settings.webhooks.asymmetric_signing_keys
        ]
    }
