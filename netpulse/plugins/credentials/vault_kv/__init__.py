"""``vault_kv``: credentials read from HashiCorp Vault's KV engine (v1 or v2) with hvac."""

from netpulse.plugins.credentials.vault_kv.provider import VaultKvCredentials

__all__ = ["VaultKvCredentials"]
