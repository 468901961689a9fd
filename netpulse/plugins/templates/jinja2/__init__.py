"""The built-in ``jinja2`` renderer (sandboxed, strict undefined variables, size limits)."""

from netpulse.plugins.templates.jinja2.renderer import Jinja2Renderer

__all__ = ["Jinja2Renderer"]
