"""The built-in `basic` caller: one HTTP request with the event as JSON."""

from netpulse.plugins.webhooks.basic.caller import BasicWebHookCaller

__all__ = ["BasicWebHookCaller"]
