"""Template plugins: renderers (jinja2) and parsers (textfsm, ttp), one folder each.

Third-party packages add more through the entry-point group ``netpulse.templates``.
"""

from netpulse.plugins import PluginRegistry
from netpulse.plugins.templates.base import (
    BaseTemplatePlugin,
    TemplateError,
    TemplateNotFound,
    TrustedText,
)

registry: PluginRegistry[BaseTemplatePlugin] = PluginRegistry(
    "templates", BaseTemplatePlugin, "template_name"
)

__all__ = ["BaseTemplatePlugin", "TemplateError", "TemplateNotFound", "TrustedText", "registry"]
