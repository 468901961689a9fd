"""Render and parse by plugin name: the one entry point for the API and for jobs.

- :func:`render` / :func:`render_lines`: a job's ``rendering`` (the rendered lines are what
  runs) and ``POST /template/render``.
- :func:`parse` / :func:`parse_each`: ``POST /template/parse`` and a job's ``parsing``
  (``parse_each`` loads the template once and gives each output its own result or error, so
  one output that does not match leaves the others and the raw text untouched).

Every client-fixable problem is a :class:`TemplateError` (``UnknownTemplatePlugin`` for a
wrong ``name``); plugins are instantiated once per process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from netpulse.config import Settings
from netpulse.registry import PluginError
from netpulse.templates.contract import BaseTemplatePlugin, TemplateError, registry
from netpulse.templates.sources import load_template

DEFAULT_RENDERER = "jinja2"
DEFAULT_PARSER = "textfsm"

_instances: dict[str, BaseTemplatePlugin] = {}
_lock = threading.Lock()


class UnknownTemplatePlugin(TemplateError):
    """``name`` is not a renderer/parser; the message lists the valid ones."""


def renderer_names() -> list[str]:
    return [n for n, cls in sorted(registry.plugins.items()) if cls.can_render()]


def parser_names() -> list[str]:
    return [n for n, cls in sorted(registry.plugins.items()) if cls.can_parse()]


def get_plugin(name: str, action: str) -> BaseTemplatePlugin:
    """The plugin instance called ``name`` that can ``action`` ("render" or "parse")."""
    valid = renderer_names() if action == "render" else parser_names()
    kind = "renderer" if action == "render" else "parser"
    try:
        cls = registry.get(name)
    except PluginError:
        cls = None
    if cls is None or name not in valid:
        raise UnknownTemplatePlugin(f"unknown {kind} {name!r}; valid: {', '.join(valid)}")
    with _lock:
        plugin = _instances.get(name)
        if plugin is None or type(plugin) is not cls:
            plugin = _instances[name] = cls()
    return plugin


def check_names(rendering: str | None = None, parsing: str | None = None) -> None:
    """Validate plugin names when a job is submitted (TemplateError -> 422 there too)."""
    if rendering is not None:
        get_plugin(rendering, "render")
    if parsing is not None:
        get_plugin(parsing, "parse")


def render(
    name: str | None,
    template_ref: str | None,
    context: Mapping[str, Any] | None,
    settings: Settings,
) -> str:
    """Render the template ``template_ref`` refers to with ``context``."""
    plugin = get_plugin(name or DEFAULT_RENDERER, "render")
    text = load_template(template_ref, settings)
    if text is None:
        raise TemplateError("rendering needs a template")
    return plugin.render(text, dict(context or {}))


def render_lines(
    name: str | None,
    template_ref: str | None,
    context: Mapping[str, Any] | None,
    settings: Settings,
) -> list[str]:
    """The rendered text as the lines a job sends: trailing spaces cut, blank lines dropped."""
    rendered = render(name, template_ref, context, settings)
    return [line.rstrip() for line in rendered.splitlines() if line.strip()]


def parse(
    name: str | None,
    template_ref: str | None,
    output: str,
    options: Mapping[str, Any] | None,
    settings: Settings,
) -> Any:
    """Parse one device output; TemplateError if it cannot be parsed as asked."""
    plugin = get_plugin(name or DEFAULT_PARSER, "parse")
    text = load_template(template_ref, settings)
    return plugin.parse(text, output, dict(options or {}))


@dataclass(frozen=True)
class ParseOutcome:
    """One output's parse: ``parsed`` or, when it failed, ``error`` (a sentence)."""

    parsed: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_each(
    name: str | None,
    template_ref: str | None,
    outputs: Iterable[str],
    options: Mapping[str, Any] | None,
    settings: Settings,
) -> list[ParseOutcome]:
    """Parse several outputs with one template (fetched/read once); never raises
    TemplateError: a failure is recorded for each output it concerns."""
    outputs = list(outputs)
    try:
        plugin = get_plugin(name or DEFAULT_PARSER, "parse")
        text = load_template(template_ref, settings)
    except TemplateError as exc:
        return [ParseOutcome(error=str(exc)) for _ in outputs]
    results = []
    for output in outputs:
        try:
            results.append(ParseOutcome(parsed=plugin.parse(text, output, dict(options or {}))))
        except TemplateError as exc:
            results.append(ParseOutcome(error=str(exc)))
    return results
