"""Webhook caller plugins: one folder per caller (`basic/`, ...), registered via `__all__`.

Third-party packages add callers through the entry-point group ``netpulse.webhooks``.
"""

from netpulse.plugins import PluginRegistry
from netpulse.plugins.webhooks.base import (
    AttemptOutcome,
    BaseWebHookCaller,
    DeliveryContext,
    GiveUp,
    RetryDelivery,
)

registry: PluginRegistry[BaseWebHookCaller] = PluginRegistry(
    "webhooks", BaseWebHookCaller, "webhook_name"
)

__all__ = [
    "AttemptOutcome",
    "BaseWebHookCaller",
    "DeliveryContext",
    "GiveUp",
    "RetryDelivery",
    "registry",
]
