"""The ``vault_kv`` provider: a login read from HashiCorp Vault's KV engine (v1 or v2),
through ``hvac``.

A request's ``credential.ref`` is the secret's path inside the KV mount (``network/core-1``);
``mount``, ``version`` and ``namespace`` of the reference override the options'. What must
stay true:

* :meth:`check` (the API, at submission) reads nothing from Vault: it refuses a malformed
  reference (422) and a path outside ``allowed_paths`` (403, naming the path). :meth:`read`
  applies the same rules again, so a reference that skipped the API is refused too.
* No message or log line holds the token, the AppRole secret_id or a secret's value. Vault's
  own error text is never passed on: each failure kind has its sentence (``_FAILURES``), and
  names the provider, the mount and the path.
* Secrets are cached in this process's memory only, for ``cache_ttl`` seconds, keyed by
  namespace, mount, path and version; failures are never cached.
* AppRole logs in on the first read and again, once, when Vault answers 403 (the token's
  lease ran out); a static token is asked about (``lookup-self``) only to tell "token
  refused" from "policy refuses this path".
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

import hvac  # type: ignore[import-untyped]
import hvac.exceptions  # type: ignore[import-untyped]
import requests

from netpulse.config import Settings
from netpulse.credentials import BaseCredentialProvider, CredentialError, CredentialForbidden
from netpulse.errors import Unprocessable
from netpulse.models.credential import CredentialRef
from netpulse.plugins.credentials.vault_kv.options import SECTION, VaultKvOptions, load_options

log = logging.getLogger(__name__)

#: Secrets kept at most (the oldest go first); clients kept at most (one per namespace).
MAX_CACHED = 1024
MAX_CLIENTS = 32


@dataclass(frozen=True)
class Target:
    """One secret in Vault: also the cache key."""

    namespace: str | None
    mount: str
    path: str
    version: int | None

    @property
    def full_path(self) -> str:
        return f"{self.mount}/{self.path}"

    def describe(self) -> str:
        parts = [f"mount {self.mount!r}", f"path {self.path!r}"]
        if self.namespace:
            parts.insert(0, f"namespace {self.namespace!r}")
        if self.version is not None:
            parts.append(f"version {self.version}")
        return ", ".join(parts)


class _LoginRefused(Exception):
    """Vault refused the AppRole login itself (wrong role_id or secret_id, or no such mount)."""


class _NoData(Exception):
    """Vault answered, but with no key/value data where the KV engine puts it."""


#: Each failure and the sentence it gives, first match wins (subclasses before their base).
_FAILURES: tuple[tuple[type[BaseException], str], ...] = (
    (hvac.exceptions.InvalidPath, "secret not found"),
    (
        hvac.exceptions.Forbidden,
        "permission denied (the Vault token's policies do not allow reading this path)",
    ),
    (hvac.exceptions.Unauthorized, "Vault refused the login (token invalid or expired)"),
    (hvac.exceptions.VaultDown, "Vault is sealed or unreachable"),
    (
        requests.exceptions.SSLError,
        f"Vault is unreachable: its TLS certificate was not accepted ({SECTION}.verify)",
    ),
    (requests.exceptions.RequestException, "Vault is sealed or unreachable"),
    (
        _NoData,
        f"Vault's answer holds no key/value data (is the mount a KV engine of the version "
        f"{SECTION}.kv_version says?)",
    ),
    (hvac.exceptions.VaultError, "Vault answered with an unexpected error"),
)


def _problem(value: str) -> str | None:
    """Why ``value`` cannot be a Vault path (None when it can)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "holds a control character"
    if any(part in ("", ".", "..") for part in value.split("/")):
        return "has an empty, '.' or '..' segment (or starts or ends with /)"
    return None


def _text(value: Any) -> str:
    """A secret's field as the login fields take it: text (JSON for nested values)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


class VaultKvCredentials(BaseCredentialProvider):
    """Reads ``credential.ref`` from Vault's KV engine (options: ``credentials.vault_kv``)."""

    provider_name = "vault_kv"

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(settings)
        self.config: VaultKvOptions = load_options(self.options)
        self._clock = clock
        self._approle = self.config.role_id is not None
        token = self.config.token
        self._token: str | None = token.get_secret_value() if token is not None else None
        self._session = requests.Session()
        self._clients: dict[str | None, Any] = {}  # namespace -> hvac.Client with _token
        self._auth_lock = threading.Lock()
        self._cache: dict[Target, tuple[float, dict[str, str]]] = {}
        self._cache_lock = threading.Lock()

    # -- the contract -------------------------------------------------------------------------

    def check(self, ref: CredentialRef) -> None:
        target = self._target(ref, Unprocessable)
        if not self._allowed(target):
            raise CredentialForbidden(
                f"vault_kv: path {target.full_path!r} is outside {SECTION}.allowed_paths"
            )

    def read(self, ref: CredentialRef) -> dict[str, str]:
        target = self._target(ref, CredentialError)
        if not self._allowed(target):
            raise CredentialError(
                f"vault_kv: path {target.full_path!r} is outside {SECTION}.allowed_paths"
            )
        cached = self._cached(target)
        if cached is not None:
            return dict(cached)
        values = self._fetch(target)
        self._remember(target, values)
        return dict(values)

    # -- the reference ------------------------------------------------------------------------

    def _target(self, ref: CredentialRef, error: type[Exception]) -> Target:
        """The secret ``ref`` names, or ``error`` saying what is wrong with it."""
        mount = (ref.mount if ref.mount is not None else self.config.mount).strip("/")
        namespace = ref.namespace if ref.namespace is not None else self.config.namespace
        namespace = (namespace or "").strip("/") or None
        for what, value in (("ref", ref.ref), ("mount", mount), ("namespace", namespace)):
            if value is None:
                continue
            why = _problem(value) if value else "is empty"
            if why:
                raise error(f"vault_kv: credential.{what} {value!r} {why}")
        if ref.version is not None and self.config.kv_version != 2:
            raise error(
                f"vault_kv: credential.version is for KV version 2; {SECTION}.kv_version is "
                f"{self.config.kv_version} (mount {mount!r}, path {ref.ref!r})"
            )
        return Target(namespace=namespace, mount=mount, path=ref.ref, version=ref.version)

    def _allowed(self, target: Target) -> bool:
        patterns = self.config.allowed_paths
        return not patterns or any(fnmatchcase(target.full_path, p) for p in patterns)

    # -- the cache ----------------------------------------------------------------------------

    def _cached(self, target: Target) -> dict[str, str] | None:
        if self.config.cache_ttl <= 0:
            return None
        with self._cache_lock:
            entry = self._cache.get(target)
            if entry is None:
                return None
            if entry[0] > self._clock():
                return entry[1]
            del self._cache[target]
            return None

    def _remember(self, target: Target, values: dict[str, str]) -> None:
        if self.config.cache_ttl <= 0:
            return
        now = self._clock()
        with self._cache_lock:
            if len(self._cache) >= MAX_CACHED:
                for key in [k for k, (until, _) in self._cache.items() if until <= now]:
                    del self._cache[key]
            while len(self._cache) >= MAX_CACHED:
                del self._cache[next(iter(self._cache))]
            self._cache[target] = (now + self.config.cache_ttl, values)

    # -- Vault --------------------------------------------------------------------------------

    def _new_client(self, token: str, namespace: str | None) -> Any:
        return hvac.Client(
            url=self.config.url,
            token=token,  # "" before the AppRole login: no header (and no VAULT_TOKEN)
            verify=self.config.verify,
            timeout=self.config.timeout,
            namespace=namespace,
            session=self._session,
        )

    def _client(self, namespace: str | None) -> tuple[Any, str]:
        """A client for ``namespace`` with the current token (AppRole: logs in first)."""
        with self._auth_lock:
            if self._token is None:
                self._login_locked()
            assert self._token is not None
            client = self._clients.get(namespace)
            if client is None:
                if len(self._clients) >= MAX_CLIENTS:
                    self._clients.clear()
                client = self._clients[namespace] = self._new_client(self._token, namespace)
            return client, self._token

    def _relogin(self, stale: str) -> None:
        """AppRole: a new token, unless another thread got one since ``stale`` failed."""
        with self._auth_lock:
            if self._token == stale:
                self._login_locked()

    def _login_locked(self) -> None:
        role_id, secret_id = self.config.role_id, self.config.secret_id
        assert role_id is not None and secret_id is not None
        client = self._new_client("", self.config.namespace)
        try:
            answer = client.auth.approle.login(
                role_id=role_id.get_secret_value(),
                secret_id=secret_id.get_secret_value(),
                mount_point=self.config.approle_mount,
                use_token=False,
            )
        except (hvac.exceptions.VaultDown, requests.exceptions.RequestException):
            raise
        except hvac.exceptions.VaultError:
            raise _LoginRefused() from None
        try:
            token = answer["auth"]["client_token"]
        except (TypeError, KeyError):
            raise _LoginRefused() from None
        if not isinstance(token, str) or not token:
            raise _LoginRefused()
        self._token = token
        self._clients.clear()
        log.info("vault_kv: logged in with AppRole (mount %r)", self.config.approle_mount)

    def _get(self, client: Any, target: Target) -> dict[str, str]:
        """One read of the secret's fields (hvac's exceptions pass through)."""
        if self.config.kv_version == 2:
            answer = client.secrets.kv.v2.read_secret_version(
                path=target.path,
                mount_point=target.mount,
                version=target.version,
                raise_on_deleted_version=True,
            )
            body = answer.get("data") if isinstance(answer, dict) else None
            data = body.get("data") if isinstance(body, dict) else None
        else:
            answer = client.secrets.kv.v1.read_secret(path=target.path, mount_point=target.mount)
            data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict):
            raise _NoData()
        return {str(k): _text(v) for k, v in data.items() if v is not None}

    def _fetch(self, target: Target) -> dict[str, str]:
        client: Any = None
        try:
            client, token = self._client(target.namespace)
            try:
                return self._get(client, target)
            except hvac.exceptions.Forbidden:
                if not self._approle:
                    raise
                self._relogin(token)  # the token's lease ran out: log in again, once
                client, _ = self._client(target.namespace)
                return self._get(client, target)
        except _LoginRefused:
            raise CredentialError(
                f"vault_kv: Vault refused the AppRole login ({SECTION}.role_id and secret_id, "
                f"mount {self.config.approle_mount!r}) reading {target.describe()}"
            ) from None
        except hvac.exceptions.Forbidden:
            if client is not None and not self._approle and not self._token_accepted(client):
                raise CredentialError(
                    f"vault_kv: Vault refused the token (invalid or expired; {SECTION}.token) "
                    f"reading {target.describe()}"
                ) from None
            raise self._failure(hvac.exceptions.Forbidden(), target) from None
        except (hvac.exceptions.VaultError, requests.exceptions.RequestException, _NoData) as exc:
            raise self._failure(exc, target) from None

    def _token_accepted(self, client: Any) -> bool:
        """Whether Vault knows the static token (a 403 then means the path's policy)."""
        try:
            client.auth.token.lookup_self()
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
            return False
        except (hvac.exceptions.VaultError, requests.exceptions.RequestException):
            return True  # cannot tell: the read's own answer stands
        return True

    def _failure(self, exc: BaseException, target: Target) -> CredentialError:
        """The sentence for ``exc`` (never Vault's own text, which may quote a request)."""
        what = next(text for kind, text in _FAILURES if isinstance(exc, kind))
        if isinstance(exc, requests.exceptions.RequestException | hvac.exceptions.VaultDown):
            where = urlsplit(self.config.url)
            log.warning(
                "vault_kv: %s at %s://%s (%s) reading %s",
                what,
                where.scheme,
                where.netloc,
                type(exc).__name__,
                target.describe(),
            )
        return CredentialError(f"vault_kv: {what}: {target.describe()}")
