"""Outbound HTTP: the destination policy (SSRF guard) and the clients that apply it."""
