"""`/keys`: scoped API keys (``admin`` only). A key is shown once, in the reply that makes
it; afterwards only its name, scopes, creation time and last four characters."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, ConfigDict, Field
from redis import Redis

from netpulse.api.auth import needs
from netpulse.api.deps import get_redis
from netpulse.security import api_keys
from netpulse.security.api_keys import ApiKeyRecord, NewApiKey, Scope

router = APIRouter(prefix="/keys", tags=["keys"], dependencies=[needs(Scope.ADMIN)])


class KeyRequest(BaseModel):
    """``POST /keys``: the new key's name and scopes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., pattern=api_keys.NAME_PATTERN, description="Shown as submitted_by.")
    scopes: list[Scope] = Field(..., min_length=1, max_length=len(Scope))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=NewApiKey,
    responses={409: {"description": "A key of that name exists; revoke it first."}},
)
def create_key(body: KeyRequest, conn: Redis = Depends(get_redis)) -> NewApiKey:
    """Make a key; the reply holds it, and no later reply will."""
    return api_keys.create(conn, body.name, body.scopes)


@router.get("", response_model=list[ApiKeyRecord])
def list_keys(conn: Redis = Depends(get_redis)) -> list[ApiKeyRecord]:
    """The stored keys (the settings' key is not among them: it is ``default``)."""
    return api_keys.listing(conn)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_key(
    name: str = Path(..., pattern=api_keys.NAME_PATTERN), conn: Redis = Depends(get_redis)
) -> None:
    """Revoke a key: the next request with it gets 403."""
    api_keys.revoke(conn, name)
