"""The built-in ``ttp`` parser (inline templates, checked for safety, and ttp-templates)."""

from netpulse.plugins.templates.ttp.parser import TTPParser

__all__ = ["TTPParser"]
