"""Credential provider plugins: one package each (``__all__`` names the class)."""
