"""The built-in ``textfsm`` parser (inline templates and the ntc-templates library)."""

from netpulse.plugins.templates.textfsm.parser import TextFSMParser

__all__ = ["TextFSMParser"]
