"""The ``jinja2`` renderer: client templates in Jinja2's immutable sandbox.

Why each choice:

- ``ImmutableSandboxedEnvironment``: the template comes from an API client; the sandbox
  refuses ``_``-prefixed attributes (``''.__class__``, ``cycler.__init__.__globals__``),
  internal attributes of functions and frames, and methods that modify lists, dicts and sets.
- ``StrictUndefined``: a misspelt variable must fail with its name, not push an empty
  ``ip address`` line to a device.
- no autoescape: the output is device configuration, not HTML.
- ``trim_blocks`` and ``lstrip_blocks``: ``{% for %}``/``{% if %}`` lines leave no blank or
  indented lines behind, which matters when every line is sent as a command.
- limits (:mod:`.limits`): output size, operations, time, and the size of what a template
  builds, so one request cannot exhaust the controller.
- compiling under a budget too: Jinja evaluates constant expressions while compiling
  (``{{ 'a'|center(10**9) }}`` is all constants); over the limits, it leaves them to the
  render, which then fails with the limit's message.
- no loader: ``{% include %}``/``{% extends %}``/``{% import %}`` are refused, a template
  cannot read files.

Compiled templates are cached by their text (compiling costs more than most renders).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from netpulse.plugins.templates.jinja2 import limits
from netpulse.templates.contract import BaseTemplatePlugin, TemplateError

_GUARD_ITER = "netpulse_guard_iter"
_GUARD_CONCAT = "netpulse_guard_concat"
_STRING_METHODS = frozenset(
    {"center", "ljust", "rjust", "zfill", "expandtabs", "replace", "format", "format_map"}
)


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every hook charging the current render's budget."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = limits.current()
        if budget is None:
            return super().call_binop(context, operator, left, right)
        limits.binop(budget, operator, left, right)
        return budget.check_size(
            super().call_binop(context, operator, left, right), f"the '{operator}' result"
        )

    def getattr(self, obj: Any, attribute: str) -> Any:
        if (budget := limits.current()) is not None:
            budget.tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if (budget := limits.current()) is not None:
            budget.tick()
        return super().getitem(obj, argument)

    def call(self, context_: Any, obj_: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = limits.current()
        if budget is None:
            return super().call(context_, obj_, *args, **kwargs)
        budget.tick()
        target = getattr(obj_, "__wrapped__", obj_)  # Jinja hands str.format over wrapped
        name = getattr(target, "__name__", "")
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str) and name == "join" and args:
            args = (limits.materialise(budget, args[0], owner, "str.join"), *args[1:])
        elif isinstance(owner, str) and name in _STRING_METHODS:
            limits.precheck(budget, name, owner, args, kwargs)
        result = super().call(context_, obj_, *args, **kwargs)
        return budget.check_size(result, f"the result of {name or 'a call'}()")


def _guard_tree(tree: nodes.Template) -> nodes.Template:
    """Route every loop iterable and every ``~`` through the budget (see limits)."""
    for loop in list(tree.find_all(nodes.For)):
        loop.iter = nodes.Filter(loop.iter, _GUARD_ITER, [], [], None, None, lineno=loop.lineno)
    for concat in list(tree.find_all(nodes.Concat)):
        replacement = nodes.Filter(
            nodes.List(concat.nodes, lineno=concat.lineno),
            _GUARD_CONCAT,
            [],
            [],
            None,
            None,
            lineno=concat.lineno,
        )
        concat.nodes = [replacement]
    return tree


def _make_environment() -> LimitedSandbox:
    env = LimitedSandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters = {name: limits.guard_filter(name, f) for name, f in env.filters.items()}
    env.filters[_GUARD_ITER] = limits.guard_iter
    env.filters[_GUARD_CONCAT] = limits.guard_concat
    env.globals.pop("lipsum", None)  # paragraphs of Latin on demand: an allocation lever
    env.globals["namespace"] = limits.GuardedNamespace
    return env


_ENV = _make_environment()


@functools.lru_cache(maxsize=256)
def _compile(source: str) -> jinja2.Template:
    token = limits.CURRENT.set(limits.Budget(Jinja2Renderer.limits))
    try:
        return _ENV.from_string(_guard_tree(_ENV.parse(source)))
    finally:
        limits.CURRENT.reset(token)


def _template_line(exc: BaseException) -> int | None:
    """The template line an exception was raised on (Jinja rewrites tracebacks so template
    frames carry the template's file name and line)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _at(line: int | None) -> str:
    return f" (line {line})" if line else ""


def describe(exc: BaseException) -> str:
    """One sentence for a client about why the template failed."""
    line = getattr(exc, "lineno", None) or _template_line(exc)
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"template syntax error{_at(line)}: {exc.message}"
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"refused by the template sandbox{_at(line)}: {exc}"
    if isinstance(exc, jinja2.UndefinedError):
        message = str(exc)
        if message.endswith(" is undefined"):
            return f"undefined variable {message.removesuffix(' is undefined')}{_at(line)}"
        return f"undefined value{_at(line)}: {message}"
    if isinstance(exc, TypeError) and "no loader" in str(exc):
        return f"include, import and extends are not supported{_at(line)}"
    if isinstance(exc, RecursionError):
        return f"the template recursed too deeply{_at(line)}"
    return f"rendering failed{_at(line)}: {type(exc).__name__}: {exc}"


class Jinja2Renderer(BaseTemplatePlugin):
    """Render Jinja2 templates in a sandbox with strict undefined variables and limits."""

    template_name: ClassVar[str] = "jinja2"
    limits: ClassVar[limits.Limits] = limits.Limits()

    def render(self, template: str, context: dict[str, Any]) -> str:
        if not isinstance(context, dict):
            raise TemplateError("the rendering context must be a JSON object")
        try:
            compiled = _compile(template)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(describe(exc)) from None
        budget = limits.Budget(self.limits)
        token = limits.CURRENT.set(budget)
        try:
            chunks: list[str] = []
            size = 0
            for chunk in compiled.generate(context):
                size += len(chunk)
                if size > self.limits.max_output_chars:
                    raise limits.RenderLimitExceeded(
                        f"the rendered text is longer than {self.limits.max_output_chars:,} "
                        "characters"
                    )
                chunks.append(chunk)
            return "".join(chunks)
        except TemplateError as exc:
            raise TemplateError(f"{exc}{_at(_template_line(exc))}") from None
        except (Exception, RecursionError) as exc:  # the template's own errors
            raise TemplateError(describe(exc)) from None
        finally:
            limits.CURRENT.reset(token)
