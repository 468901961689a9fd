"""`/credentials`: the built-in credential store (provider ``local``). Values are
write-only: the API shows which fields a credential has, never what they hold."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, status
from redis import Redis

from netpulse.api.auth import needs
from netpulse.api.deps import get_redis
from netpulse.credentials import store
from netpulse.errors import NotFound, Unprocessable
from netpulse.models.credential import NAME_PATTERN, CredentialInfo, CredentialWrite
from netpulse.security.api_keys import Scope

router = APIRouter(prefix="/credentials", tags=["credentials"], dependencies=[needs(Scope.ADMIN)])

#: A credential's name in a path (also its ``ref`` in a request's ``credential``).
NAME = Path(
    ...,
    pattern=NAME_PATTERN,
    description="Letters, digits and _ . : - (at most 128).",
)


@router.put("/{name}", response_model=CredentialInfo)
def put_credential(
    body: CredentialWrite, name: str = NAME, conn: Redis = Depends(get_redis)
) -> CredentialInfo:
    """Store (or replace) a credential; jobs use it with
    ``"credential": {"name": "local", "ref": "<name>"}``."""
    values = body.given()
    if not values:
        raise Unprocessable("give at least one of username, password, secret, pkey, passphrase")
    return store.put(conn, name, values)


@router.get("", response_model=list[CredentialInfo])
def list_credentials(conn: Redis = Depends(get_redis)) -> list[CredentialInfo]:
    """The stored credentials: names, the fields each has, when made and changed."""
    return store.all_info(conn)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_credential(name: str = NAME, conn: Redis = Depends(get_redis)) -> None:
    if not store.delete(conn, name):
        raise NotFound(f"no stored credential named {name!r}")
