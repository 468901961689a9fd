"""``local``: credentials from NetPulse's own store (``PUT /credentials/{name}``)."""

from netpulse.plugins.credentials.local.provider import LocalCredentials

__all__ = ["LocalCredentials"]
