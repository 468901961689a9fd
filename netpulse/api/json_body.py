"""Reading a JSON request body that a client may have made hostile.

Python's ``json`` parses nesting by recursion (thousands of levels raise ``RecursionError``, a
500) and accepts lone UTF-16 surrogates (``"\\ud800"``), which no UTF-8 encoder can write
back: such a string makes the reply, Redis and every later listing of the job fail. Both are
refused here, before anything is parsed or stored, with a sentence that says where.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: A JSON string literal, escapes included (what may hide brackets and ``\\u`` escapes).
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class BodyRejected(ValueError):
    """The body cannot be accepted; the message says why, for the client."""


def nesting_depth(raw: bytes, enough: int = 0) -> int:
    """How deeply arrays and objects nest in ``raw`` (brackets inside strings do not count).

    A body with at most ``enough`` opening brackets cannot nest deeper than that: their count
    is returned without the scan (two passes in C instead of a copy and a regex walk)."""
    openings = raw.count(b"[") + raw.count(b"{")
    if openings <= max(enough, 1):
        return openings
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _lone_surrogate_at(value: Any, path: str = "body") -> str | None:
    """The path of the first string in ``value`` (keys included) that is not valid Unicode."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _lone_surrogate_at(item, f"{path}[{index}]")
            if found:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            found = _lone_surrogate_at(key, f"{path} (a key)") or _lone_surrogate_at(
                item, f"{path}.{key}"
            )
            if found:
                return found
    return None


def _check_depth(data: bytes, max_depth: int) -> None:
    depth = nesting_depth(data, enough=max_depth)
    if depth > max_depth:
        raise BodyRejected(
            f"the JSON body nests {depth} levels deep; at most {max_depth} are accepted "
            "(server.max_json_depth)"
        )


def _check_text(value: Any) -> None:
    where = _lone_surrogate_at(value)
    if where is not None:
        raise BodyRejected(
            f"{where} holds a lone UTF-16 surrogate (an escape such as \\ud800 without its "
            "pair); send valid Unicode text"
        )


def _parse(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyRejected(f"the request body is not valid JSON: {exc}") from None


def check_shape(raw: bytes, max_depth: int) -> None:
    """What the request guard checks of every JSON body before a route parses it: depth, and
    (only when the text holds a surrogate escape at all) lone surrogates. The body is parsed
    here only in that rare case; a body that is not JSON is left to the route to refuse."""
    _check_depth(raw, max_depth)
    if _SURROGATE_ESCAPE.search(raw):
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return  # not JSON: the route says so, with FastAPI's usual detail
        _check_text(value)


def check_json(raw: bytes | str, max_depth: int) -> Any:
    """Parse ``raw``; :class:`BodyRejected` for too deep nesting or lone surrogates, and for
    text that is not JSON (the message carries the parser's position)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    _check_depth(data, max_depth)
    value = _parse(data)
    if isinstance(raw, str) or _SURROGATE_ESCAPE.search(data):
        _check_text(value)
    return value
