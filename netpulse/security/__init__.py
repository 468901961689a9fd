"""Secrets at rest: sealing what must be stored in Redis (``sealing``)."""
