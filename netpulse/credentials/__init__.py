"""The credential provider contract and its registry, and how a job's credential is used.

Providers live in ``netpulse/plugins/credentials/<name>/`` (``__all__``) or come from the
entry-point group ``netpulse.credentials``. A provider reads one credential for a
:class:`~netpulse.models.credential.CredentialRef`; :func:`fill` puts it into the
request's ``connection_args`` in the process that runs the job (worker, or the controller
for ``POST /device/test``), never into anything stored. :func:`check` runs where a request
enters (the API), so a reference the provider would never serve is refused at once.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from netpulse.config import ConfigError, Settings, get_settings
from netpulse.drivers import registry as drivers
from netpulse.drivers.options import COMMON_FIELDS
from netpulse.errors import Forbidden, Unavailable, Unprocessable
from netpulse.models.credential import FILLED, CredentialRef
from netpulse.models.job import JobErrorType
from netpulse.models.request import ConnectionArgs
from netpulse.registry import PluginError, PluginRegistry

__all__ = [
    "BaseCredentialProvider",
    "CredentialError",
    "CredentialForbidden",
    "check",
    "fill",
    "registry",
]


class CredentialError(RuntimeError):
    """The credential cannot be read (not found, refused, store away). The message names
    the provider and the reference, never a secret."""

    error_type: ClassVar[JobErrorType] = JobErrorType.CREDENTIAL_ERROR


class CredentialForbidden(Forbidden):
    """The reference is outside what the provider may read (``allowed_paths``): a 403
    that names the reference, raised at submission."""


class BaseCredentialProvider:
    """One way to read credentials. Subclasses set ``provider_name`` and implement
    :meth:`read`; one instance per process (built with the process's settings), so a
    provider may keep a client or a cache. Its options are ``settings.credentials[<name>]``."""

    provider_name: ClassVar[str] = ""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def options(self) -> dict[str, Any]:
        """This provider's section of the settings (``credentials.<provider_name>``)."""
        return self.settings.credentials.get(self.provider_name, {})

    def check(self, ref: CredentialRef) -> None:
        """Refuse, where the request enters, a reference this provider will never read:
        ``CredentialForbidden`` (403) or ``Unprocessable`` (422). Reads nothing."""

    def read(self, ref: CredentialRef) -> dict[str, str]:
        """The secret's fields (``username``, ``password``...), or ``CredentialError``."""
        raise NotImplementedError


registry: PluginRegistry[BaseCredentialProvider] = PluginRegistry(
    "credentials", BaseCredentialProvider, "provider_name"
)
_instances: dict[str, BaseCredentialProvider] = {}
_instances_lock = threading.Lock()


class ProviderUnavailable(CredentialError):
    """The provider cannot be used on this server (its settings are wrong or missing)."""


def provider(name: str) -> BaseCredentialProvider:
    """The process's instance of provider ``name``, made once (a node's job threads share
    it, with its client and cache). ``CredentialError`` when the provider is unknown,
    ``ProviderUnavailable`` when its settings are wrong."""
    with _instances_lock:
        if name not in _instances:
            try:
                cls = registry.get(name)
            except PluginError as exc:
                raise CredentialError(str(exc)) from None
            try:
                _instances[name] = cls(get_settings())
            except ConfigError as exc:
                raise ProviderUnavailable(
                    f"the credential provider {name!r} is not set up on this server: {exc}"
                ) from None
        return _instances[name]


def check(ref: CredentialRef) -> None:
    """Where a request enters: the provider exists, is set up, and would serve this
    reference (422 unknown, 503 not set up, 403 or 422 from the provider's own check)."""
    if ref.name not in registry.names():
        valid = ", ".join(registry.names())
        raise Unprocessable(f"unknown credential provider {ref.name!r}; valid: {valid}")
    try:
        chosen = provider(ref.name)
    except ProviderUnavailable as exc:
        raise Unavailable(str(exc)) from None
    chosen.check(ref)


def fill(args: ConnectionArgs, ref: CredentialRef, driver: str | None = None) -> ConnectionArgs:
    """``args`` with the login fields the credential has, where the request left them
    empty (a value the request gives itself wins). ``field_mapping`` renames: ``{"password":
    "pass"}`` takes ``password`` from the secret's field ``pass``.

    With ``driver`` (the job's), a field that driver does not take is left out (netmiko
    takes no ``pkey`` text): one credential may hold a key for paramiko and a password for
    netmiko. Without it every field the credential has is filled."""
    values = provider(ref.name).read(ref)
    mapping = ref.field_mapping or {}
    update: dict[str, str] = {}
    for name in taken_by(driver):
        value = values.get(mapping.get(name, name))  # type: ignore[call-overload]
        if value is not None and getattr(args, name, None) in (None, ""):
            update[name] = value
    filled = args.model_copy(update=update)
    if not filled.username:  # every driver logs in as someone
        raise CredentialError(
            f"credential {ref.ref!r} ({ref.name}) has no username and the request gives none"
        )
    return filled


def taken_by(driver: str | None) -> tuple[str, ...]:
    """The login fields ``driver`` takes in ``connection_args`` (all of them for None)."""
    if driver is None:
        return FILLED
    options = drivers.get(driver).connection_options.model_fields
    return tuple(name for name in FILLED if name in COMMON_FIELDS or name in options)
