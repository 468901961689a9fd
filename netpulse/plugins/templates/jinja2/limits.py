"""Resource limits for sandboxed Jinja2 renders.

Jinja2's sandbox stops templates from reaching Python internals, but (as its documentation
says) not from using up CPU and memory: ``{{ 'x' * 10**10 }}``, ``{{ 10 ** 10 ** 10 }}``,
nested loops, ``{{ s|center(10**9) }}``. A template comes from an API client, so every render
gets a :class:`Budget` (in a context variable, because compiled templates are shared between
threads) and the sandbox hooks consult it:

- a count of "operations" (loop iterations, calls, attribute and item lookups, filters) and
  a wall-clock deadline checked every few hundred operations;
- a size cap on every string or list a template builds (repetition, concatenation,
  namespace assignment, filter and method results) and on the rendered output;
- pre-checks for the operations that could allocate far beyond the cap in one step (huge
  powers and products, widths, ``join``/``replace``/``indent``/``wordwrap`` amplification).

What is left is bounded by the caps times a small factor, not unbounded.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jinja2.utils import Namespace

from netpulse.templates.contract import TemplateError


class RenderLimitExceeded(TemplateError):
    """A render went over one of the limits; the message names which."""


@dataclass(frozen=True)
class Limits:
    """The numbers one render may not exceed."""

    max_output_chars: int = 1 << 20
    max_operations: int = 5_000_000
    max_seconds: float = 5.0
    max_int_bits: int = 64_000


@dataclass
class Budget:
    """What one render has used so far."""

    limits: Limits
    deadline: float = field(init=False)
    operations: int = 0

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.limits.max_seconds

    def tick(self, count: int = 1) -> None:
        before = self.operations
        self.operations += count
        if self.operations > self.limits.max_operations:
            raise RenderLimitExceeded(
                f"the template did more than {self.limits.max_operations:,} operations "
                "(loop iterations, calls, lookups); simplify it or split the render"
            )
        if (before >> 8) != (self.operations >> 8) and time.monotonic() > self.deadline:
            raise RenderLimitExceeded(
                f"rendering took longer than {self.limits.max_seconds:g} s; simplify the template"
            )

    def check_size(self, value: Any, what: str = "a value") -> Any:
        """Return ``value`` if it is within the size cap, else raise."""
        size = _size(value)
        if size is not None and size > self.limits.max_output_chars:
            raise RenderLimitExceeded(
                f"the template built {what} of {size:,} characters or items, more than the "
                f"limit of {self.limits.max_output_chars:,}"
            )
        return value

    def check_estimate(self, size: float, what: str) -> None:
        if size > self.limits.max_output_chars:
            raise RenderLimitExceeded(
                f"{what} would produce about {int(size):,} characters, more than the limit of "
                f"{self.limits.max_output_chars:,}"
            )


CURRENT: ContextVar[Budget | None] = ContextVar("netpulse_jinja2_budget", default=None)


def _size(value: Any) -> int | None:
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        return len(value)
    return None


def weight(value: Any, depth: int = 3) -> int:
    """Characters plus items in ``value``, looking ``depth`` containers deep: a list holding
    one long string is as heavy as the string when repeated or serialised."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list | tuple | set | frozenset):
        if depth <= 0:
            return len(value)
        return len(value) + sum(weight(item, depth - 1) for item in value)
    return 0


def current() -> Budget | None:
    return CURRENT.get()


# -- loops and concatenation (wired in by rewriting the template's syntax tree) -----------


def guard_iter(value: Any) -> Iterator[Any]:
    """Wraps every ``{% for %}`` iterable: one operation per item."""
    budget = CURRENT.get()
    iterator = iter(value)
    if budget is None:
        yield from iterator
        return
    for item in iterator:
        budget.tick()
        yield item


def guard_concat(parts: Iterable[Any]) -> str:
    """Replaces ``a ~ b ~ c`` so the joined string is checked before it is built."""
    strings = [str(p) for p in parts]
    budget = CURRENT.get()
    if budget is not None:
        budget.check_estimate(sum(map(len, strings)), "the '~' concatenation")
    return "".join(strings)


class GuardedNamespace(Namespace):
    """``namespace()`` whose attributes obey the size cap (loops can grow them)."""

    def __setitem__(self, name: str, value: Any) -> None:
        budget = CURRENT.get()
        if budget is not None:
            budget.tick()
            budget.check_size(value, f"namespace attribute {name!r}")
        super().__setitem__(name, value)


# -- operators ------------------------------------------------------------------------------

# Widths and precisions in a format string ("%999999999s", "{:>999999999}") allocate that
# many characters; anything of seven digits or more is past the cap anyway.
_HUGE_NUMBER_IN_FORMAT = re.compile(r"\d{7,}")


def check_format_string(budget: Budget, fmt: Any) -> None:
    if isinstance(fmt, str) and _HUGE_NUMBER_IN_FORMAT.search(fmt):
        raise RenderLimitExceeded(
            "a width or precision of a million or more in a format string is refused"
        )


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def binop(budget: Budget, operator: str, left: Any, right: Any) -> None:
    """Refuse an intercepted operation whose result would be too large to compute."""
    budget.tick()
    limit_bits = budget.limits.max_int_bits
    if operator == "**" and isinstance(left, int) and isinstance(right, int):
        if right > 0 and abs(left) > 1 and right * math.log2(abs(left)) > limit_bits:
            raise RenderLimitExceeded(
                f"{left} ** {right} is too large to compute (over {limit_bits:,} bits)"
            )
    elif operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            if _int_bits(left) + _int_bits(right) > limit_bits:
                raise RenderLimitExceeded(f"a product over {limit_bits:,} bits is refused")
            return
        count, seq = (left, right) if isinstance(left, int) else (right, left)
        if isinstance(count, int) and _size(seq) is not None:
            budget.check_estimate(weight(seq) * max(count, 0), "the '*' repetition")
    elif operator == "+":
        if _size(left) is not None and _size(right) is not None:
            budget.check_estimate(weight(left) + weight(right), "the '+' concatenation")
    elif operator == "%" and isinstance(left, str):
        check_format_string(budget, left)


# -- calls and filters ----------------------------------------------------------------------


def _text_len(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(str(value))


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any):
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _width(budget: Budget, value: Any, what: str) -> None:
    if isinstance(value, int) and value > budget.limits.max_output_chars:
        raise RenderLimitExceeded(
            f"{what} of {value:,} is more than the limit of {budget.limits.max_output_chars:,}"
        )


def precheck(budget: Budget, name: str, subject: Any, args: tuple, kwargs: dict) -> None:
    """Estimate the result of a string filter or method before running it.

    ``subject`` is the filter's input or the method's object; ``args``/``kwargs`` the rest.
    """
    if name in ("center", "ljust", "rjust", "zfill", "truncate"):
        _width(budget, _arg(args, kwargs, 0, "width", 0), f"the {name} width")
    elif name == "indent":
        width = _arg(args, kwargs, 0, "width", 4)
        pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        lines = subject.count("\n") + 1 if isinstance(subject, str) else 1
        budget.check_estimate(_text_len(subject) + lines * pad, "the indent filter")
    elif name == "wordwrap":
        width = _arg(args, kwargs, 0, "width", 79)
        wrap = _arg(args, kwargs, 2, "wrapstring", "\n")
        if isinstance(width, int) and width > 0:
            breaks = _text_len(subject) / width + 1
            budget.check_estimate(
                _text_len(subject) + breaks * _text_len(wrap or "\n"), "the wordwrap filter"
            )
    elif name == "expandtabs":
        size = _arg(args, kwargs, 0, "tabsize", 8)
        if isinstance(subject, str) and isinstance(size, int):
            budget.check_estimate(len(subject) + subject.count("\t") * size, "expandtabs")
    elif name == "replace":
        old, new = _arg(args, kwargs, 0, "old", ""), _arg(args, kwargs, 1, "new", "")
        if isinstance(subject, str) and isinstance(old, str) and isinstance(new, str):
            hits = subject.count(old) if old else len(subject) + 1
            budget.check_estimate(len(subject) + hits * len(new), "the replace")
    elif name == "format":
        check_format_string(budget, subject)


def materialise(budget: Budget, items: Any, separator: Any, what: str) -> list[Any]:
    """Read an iterable for ``join``/``sum`` while adding up what the result will weigh, so
    ``[s] * n | join`` or a generator of long strings stops before it is built."""
    if isinstance(items, str | dict | range):
        return list(items)
    result: list[Any] = []
    total = 0
    sep = _text_len(separator) if separator is not None else 0
    for item in items:
        budget.tick()
        total += (weight(item) or _text_len(item)) + sep
        budget.check_estimate(total, what)
        result.append(item)
    return result


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a built-in filter with the budget checks (keeps Jinja's pass_* marker)."""
    import functools

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = CURRENT.get()
        if budget is None:
            return func(*args, **kwargs)
        budget.tick()
        offset = 1 if hasattr(func, "jinja_pass_arg") else 0
        values = args[offset:]
        subject = values[0] if values else None
        if name in ("join", "sum") and values:
            separator = _arg(values[1:], kwargs, 0, "d", "") if name == "join" else None
            subject = materialise(budget, subject, separator, f"the {name} filter")
            args = (*args[:offset], subject, *values[1:])
        else:
            precheck(budget, name, subject, values[1:], kwargs)
        return budget.check_size(func(*args, **kwargs), f"the result of the {name} filter")

    return guarded
