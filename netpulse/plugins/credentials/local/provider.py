"""The ``local`` provider: ``ref`` is the name of a credential in the built-in store."""

from __future__ import annotations

import re

from redis import Redis
from redis.exceptions import RedisError

from netpulse.config import Settings
from netpulse.credentials import BaseCredentialProvider, CredentialError, store
from netpulse.errors import Unprocessable
from netpulse.models.credential import NAME_PATTERN, CredentialRef
from netpulse.runtime.redis_conn import connect
from netpulse.security.sealing import SealError


class LocalCredentials(BaseCredentialProvider):
    provider_name = "local"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._conn: Redis | None = None

    def _redis(self) -> Redis:
        if self._conn is None:
            self._conn = connect(self.settings.redis_url)
        return self._conn

    def check(self, ref: CredentialRef) -> None:
        """A name the store cannot hold, or no such credential: 422 at submission (only
        the name is looked up, no value is read). ``mount``, ``version`` and ``namespace``
        mean nothing to this store: refused rather than ignored."""
        other = [n for n in ("mount", "version", "namespace") if getattr(ref, n) is not None]
        if other:
            raise Unprocessable(
                f"credential.{', credential.'.join(other)} do not apply to the local provider "
                "(a stored credential is named by credential.ref alone; it has no versions)"
            )
        if not re.fullmatch(NAME_PATTERN, ref.ref):
            raise Unprocessable(
                f"credential.ref {ref.ref!r} is not a stored credential's name (letters, "
                "digits and _ . : -, at most 128)"
            )
        if not store.exists(self._redis(), ref.ref):
            raise Unprocessable(
                f"no stored credential named {ref.ref!r} (PUT /credentials/{ref.ref} makes it)"
            )

    def read(self, ref: CredentialRef) -> dict[str, str]:
        try:
            values = store.read(self._redis(), ref.ref)
        except SealError as exc:
            raise CredentialError(f"stored credential {ref.ref!r}: {exc}") from None
        except RedisError as exc:
            raise CredentialError(
                f"stored credential {ref.ref!r}: the credential store (Redis) cannot be read: {exc}"
            ) from None
        if values is None:
            raise CredentialError(
                f"no stored credential named {ref.ref!r} (PUT /credentials/{ref.ref} makes it)"
            )
        return values
