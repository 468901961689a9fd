"""The contract of a template plugin (the specification's renderers and parsers).

One class may render (text + variables -> text, e.g. Jinja2), parse (device output ->
structure, e.g. TextFSM, TTP) or both. A plugin that cannot do one of them keeps the default
method, which raises ``NotImplementedError``; the service turns that into "this plugin cannot
render/parse" for the client.

Every problem a client can fix (bad template, undefined variable, output that does not match,
no library template for a platform and command) is a :class:`TemplateError` whose message is
one sentence naming the problem; the API answers it with 422 and a job stores it next to the
raw output. Anything else escaping a plugin is a bug.
"""

from __future__ import annotations

from typing import Any, ClassVar

from netpulse.registry import PluginRegistry


class TemplateError(ValueError):
    """A template cannot be used as asked; the message says why in one sentence (4xx)."""


class TemplateNotFound(TemplateError):
    """A named template does not exist (file, ntc-templates or ttp-templates lookup)."""


class TrustedText(str):
    """Template text from a place the operator controls (the template directory).

    Text sent with a request or fetched from a URL the client chose is a plain ``str``.
    Plugins may allow, for trusted text only, features that would let a client run code on
    the server (TTP ``<macro>``, for example). A ``str`` subclass so a JSON body can never
    claim to be one.
    """

    __slots__ = ()


class BaseTemplatePlugin:
    """Base class of template plugins, found by ``template_name``.

    Plugins are instantiated once per process and called from several threads at once, so
    they keep no per-call state on ``self``.
    """

    template_name: ClassVar[str] = ""

    def render(self, template: str, context: dict[str, Any]) -> str:
        """Render ``template`` with ``context``; raise TemplateError on a client problem."""
        raise NotImplementedError

    def parse(self, template: str | None, output: str, options: dict[str, Any]) -> Any:
        """Parse one device output; ``template`` is None when ``options`` name a library
        template (platform and command). Raise TemplateError on a client problem."""
        raise NotImplementedError

    def parses_inline(self) -> bool:
        """True if parsing a small output (64 KiB) now is quick (a few milliseconds at most)
        and takes no lock, so the API may run it on its event loop instead of a thread."""
        return False

    @classmethod
    def can_render(cls) -> bool:
        return cls.render is not BaseTemplatePlugin.render

    @classmethod
    def can_parse(cls) -> bool:
        return cls.parse is not BaseTemplatePlugin.parse


registry: PluginRegistry[BaseTemplatePlugin] = PluginRegistry(
    "templates", BaseTemplatePlugin, "template_name"
)
