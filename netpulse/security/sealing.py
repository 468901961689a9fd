"""Secrets sealed before they reach Redis, opened only in the process that uses them.

A sealed value is a string ``np-sealed:v1:<Fernet token>``: AES-128-CBC with HMAC-SHA256
(authenticated), from ``cryptography``. ``MultiFernet`` gives key rotation: the first key of
``security.encryption_keys`` seals, every key opens. Without configured keys, one key is
made in ``<data_dir>/encryption.key`` (mode 0600) on first use and shared by the processes
of that machine (``netpulse up``); several machines set the same keys in their settings.

What is sealed (the one list): in a job's request, every ``connection_args`` and
``driver_args`` option whose name says it is a secret (``models.request.is_secret_option``,
nested mappings too, such as napalm's ``optional_args``), and the webhook's ``headers`` and
``cookies`` values, ``auth`` password and ``secret``. A value that is not sealed (a job
queued by an older version) opens as itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from netpulse.config import get_settings
from netpulse.models.request import ExecutionRequest, is_secret_option
from netpulse.models.webhook import WebhookConfig

W = TypeVar("W", bound=WebhookConfig)

__all__ = [
    "KEY_FILE",
    "PREFIX",
    "SealError",
    "Sealer",
    "file_key",
    "new_key",
    "open_request",
    "open_webhook_dict",
    "seal_request",
    "sealer",
]

PREFIX = "np-sealed:v1:"
KEY_FILE = "encryption.key"


class SealError(RuntimeError):
    """A sealed value no key of this process opens (another machine's key, or altered)."""


class Sealer:
    """Seal and open strings with the keys given (the first seals)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def seal(self, value: str) -> str:
        if value.startswith(PREFIX):
            return value  # sealed already (a request sealed twice stays the same)
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str) -> str:
        if not value.startswith(PREFIX):
            return value
        try:
            return self._fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SealError(
                "a secret of this job was sealed with a key this process does not have: give "
                "every machine the same security.encryption_keys (the new key first, the old "
                "ones after it while jobs sealed with them remain)"
            ) from None

    def seal_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return _walk(options, self.seal)

    def open_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return _walk(options, self.open)


def new_key() -> str:
    """A fresh key for ``security.encryption_keys``."""
    return Fernet.generate_key().decode()


def _walk(options: Mapping[str, Any], change: Any) -> dict[str, Any]:
    """The options with each secret string changed (mappings inside followed)."""
    out: dict[str, Any] = {}
    for name, value in options.items():
        if isinstance(value, Mapping):
            out[name] = _walk(value, change)
        elif isinstance(value, str) and is_secret_option(name) and name != "key_filename":
            out[name] = change(value)
        else:
            out[name] = value
    return out


def file_key(data_dir: Path) -> bytes:
    """The key in ``<data_dir>/encryption.key``, made (0600, never replaced) when missing;
    the processes of one machine share it (``netpulse up`` makes it before they start).

    Made whole under a temporary name, then linked to its name (which fails if another
    process got there first: its key is used), so no process ever reads a half-written
    key file.
    """
    path = Path(data_dir).expanduser() / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    key = Fernet.generate_key()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    try:
        os.link(temporary, path)
    except FileExistsError:  # another process made it first: use theirs
        key = path.read_bytes().strip()
    finally:
        temporary.unlink(missing_ok=True)
    return key


@lru_cache(maxsize=1)
def _cached(settings_id: int) -> Sealer:
    settings = get_settings()
    keys = [k.get_secret_value().encode() for k in settings.security.encryption_keys]
    return Sealer(keys or [file_key(settings.data_dir)])


def sealer() -> Sealer:
    """The process's sealer, from the current settings."""
    return _cached(id(get_settings()))


def seal_request(req: ExecutionRequest) -> ExecutionRequest:
    """The request as it may be queued: its secrets sealed (no validation re-run)."""
    box = sealer()
    update: dict[str, Any] = {"driver_args": box.seal_options(req.driver_args)}
    args = req.connection_args
    update["connection_args"] = args.model_copy(
        update=box.seal_options(args.model_dump(exclude_unset=True))
    )
    if req.webhook is not None:
        update["webhook"] = _change_webhook(req.webhook, box.seal)
    return req.model_copy(update=update)


def open_request(req: ExecutionRequest) -> ExecutionRequest:
    """The queued request with its secrets readable again, for this process's memory only.

    Raises :class:`SealError` when a secret cannot be opened.
    """
    box = sealer()
    update: dict[str, Any] = {"driver_args": box.open_options(req.driver_args)}
    args = req.connection_args
    opened_args = box.open_options(args.model_dump(exclude_unset=True))
    update["connection_args"] = args.model_copy(update=opened_args)
    if req.webhook is not None:
        update["webhook"] = _change_webhook(req.webhook, box.open)
    return req.model_copy(update=update)


def seal_webhook(webhook: W) -> W:
    """A webhook config (or an endpoint) with its secrets sealed, as Redis may keep it."""
    return _change_webhook(webhook, sealer().seal)


def open_webhook(webhook: W) -> W:
    """A stored webhook config (or endpoint) with its secrets readable, in memory only."""
    return _change_webhook(webhook, sealer().open)


def _change_webhook(webhook: W, change: Any) -> W:
    update: dict[str, Any] = {}
    if webhook.headers:
        update["headers"] = {k: change(v) for k, v in webhook.headers.items()}
    if webhook.cookies:
        update["cookies"] = {k: change(v) for k, v in webhook.cookies.items()}
    if webhook.auth is not None:
        user, password = webhook.auth
        update["auth"] = (user, SecretStr(change(password.get_secret_value())))
    if webhook.secret is not None:
        update["secret"] = SecretStr(change(webhook.secret.get_secret_value()))
    return webhook.model_copy(update=update)


def open_webhook_dict(data: dict[str, Any]) -> dict[str, Any]:
    """A stored webhook config (JSON) with its secrets readable, before it is validated."""
    box = sealer()
    out = dict(data)
    for field in ("headers", "cookies"):
        if isinstance(out.get(field), dict):
            out[field] = {
                k: box.open(v) if isinstance(v, str) else v for k, v in out[field].items()
            }
    auth = out.get("auth")
    if isinstance(auth, list | tuple) and len(auth) == 2 and isinstance(auth[1], str):
        out["auth"] = [auth[0], box.open(auth[1])]
    if isinstance(out.get("secret"), str):
        out["secret"] = box.open(out["secret"])
    return out
