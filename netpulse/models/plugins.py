"""How request models check plugin names and options without importing any plugin.

The models check the shape of a request on their own. Names (``driver``, ``webhook.name``)
and driver options are checked against the installed plugins only when the caller hands the
registries in pydantic's validation context (``netpulse.dispatch.intake.CHECK_PLUGINS``, as
the API does for everything clients send). So ``netpulse.models`` never imports a plugin or
a registry, and a request read back from storage (a queued job, a delivery record), checked
when it was submitted, validates without loading a driver: the delivery process has none.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import ValidationInfo


class PluginLookup(Protocol):
    """What the request models need from a plugin registry (``netpulse.registry``)."""

    def names(self) -> list[str]: ...

    def get(self, name: str) -> Any: ...


#: The validation-context key holding the driver registry.
DRIVERS = "netpulse.drivers"
#: The validation-context key holding the webhook caller registry.
WEBHOOK_CALLERS = "netpulse.webhook_callers"


def plugins_in(info: ValidationInfo, key: str) -> PluginLookup | None:
    """The registry under ``key`` in the validation context (None: no plugin checks)."""
    context = info.context
    return context.get(key) if isinstance(context, dict) else None
