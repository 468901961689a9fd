"""Refuse the parts of a TTP template that would run code or touch the server.

TTP was written for templates its user trusts. Several of its features are unsafe with a
template an API client sends:

- ``<macro>`` is Python source TTP ``exec``s with all builtins; ``<vars>``, ``<lookup>``,
  ``<input>`` and ``<output>`` load their text with the "python" loader (``exec`` too) by
  default, ``<input>``/``<extend>`` and the group ``input`` attribute read server files,
  ``<output>`` returners write files;
- function arguments (``{{ x | contains('a') }}``, ``<group contains="...">``) are
  ``eval``-ed with the module's globals, so ``contains(__import__('os')...)`` runs code;
  ``chain``/``functions`` evaluate a string argument the same way;
- ``dns``/``rdns`` send DNS queries, ``geoip_lookup`` opens a database file.

So a template that is not :class:`~netpulse.templates.contract.TrustedText` may use only
``<template>``, ``<group>`` and ``<doc>`` tags, and function arguments must be literals
(strings, numbers, booleans, None, lists/tuples/dicts of those, and bare words, which TTP
reads as strings). Everything else is refused with a sentence naming it.
"""

from __future__ import annotations

import ast
import builtins
import re
import xml.etree.ElementTree as ET

from netpulse.templates.contract import TemplateError

_ALLOWED_TAGS = {"template", "group", "g", "grp", "doc"}
_TEMPLATE_ATTRIBUTES = {"name", "results", "pathchar"}
# Group attributes TTP reads as plain strings; any other attribute is a group function
# whose value TTP evaluates as its arguments.
_GROUP_PLAIN_ATTRIBUTES = {"name", "method", "default", "output"}
_REFUSED_GROUP_ATTRIBUTES = {
    "input": "reads data from a server path",
    "chain": "evaluates its string as TTP functions",
}
_REFUSED_FUNCTIONS = {
    "chain": "evaluates its string argument as more functions",
    "dns": "sends DNS queries from the server",
    "rdns": "sends DNS queries from the server",
    "geoip_lookup": "opens a database file on the server",
    "macro": "calls Python code (macros cannot be defined here anyway)",
}
# TTP's own split of a "name(args)" item (ttp/utils/get_attributes.py).
_ITEM = re.compile(r"^(?P<name>\S+?)\s?(\((?P<options>.*)\))?$", re.DOTALL)
_VARIABLE = re.compile(r"{{([\S\s]+?)}}")
_BUILTIN_NAMES = frozenset(dir(builtins))
_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class UnsafeTemplate(TemplateError):
    """The TTP template uses a feature refused for templates sent by clients."""


def _refuse(what: str, why: str) -> UnsafeTemplate:
    return UnsafeTemplate(
        f"{what} cannot be used in a TTP template sent with the request ({why}); put the "
        "template in the template directory and use file:<name> instead"
    )


def _literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):  # TTP substitutes an unknown bare word with its name
        return not node.id.startswith("_") and node.id not in _BUILTIN_NAMES
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return isinstance(node.operand, ast.Constant)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return all(_literal(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _literal(k) for k in node.keys) and all(
            _literal(v) for v in node.values
        )
    return False


def check_arguments(options: str, where: str) -> None:
    """``options`` is what TTP will ``eval`` as ``f(<options>)``: literals only."""
    try:
        call = ast.parse(f"f({options})", mode="eval").body
    except SyntaxError:
        raise TemplateError(
            f"TTP function arguments {options!r} in {where} are not valid"
        ) from None
    assert isinstance(call, ast.Call)
    values = [*call.args, *(k.value for k in call.keywords)]
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    ):
        raise _refuse(f"argument unpacking in {where}", "arguments must be plain values")
    for value in values:
        if not _literal(value):
            raise _refuse(
                f"function arguments {options!r} in {where}",
                "only strings, numbers, True/False/None and lists of them are evaluated",
            )


def check_functions(text: str, where: str) -> None:
    """A ``|``-separated list of ``name`` or ``name(args)`` items, as TTP splits it."""
    for item in (i.strip() for i in text.split("|")):
        if not item:
            continue
        match = _ITEM.match(item)
        if match is None:
            raise TemplateError(f"TTP cannot read {item!r} in {where}")
        name = match.group("name")
        if name in _REFUSED_FUNCTIONS:
            raise _refuse(f"function {name!r} in {where}", _REFUSED_FUNCTIONS[name])
        if match.group("options") is not None:
            check_arguments(match.group("options"), where)


def _check_text(text: str | None, where: str) -> None:
    for variable in _VARIABLE.findall(text or ""):
        check_functions(variable, f"{{{{{variable.strip()}}}}} in {where}")


def _check_element(element: ET.Element, depth: int = 0) -> None:
    tag = element.tag.lower() if isinstance(element.tag, str) else str(element.tag)
    where = f"<{tag}>"
    if tag not in _ALLOWED_TAGS:
        raise _refuse(f"<{element.tag}> tags", "they can run code or read and write files")
    if tag == "template":
        for attr in element.attrib:
            if attr not in _TEMPLATE_ATTRIBUTES:
                raise _refuse(f"template attribute {attr!r}", "it points TTP at server paths")
    elif tag in ("group", "g", "grp"):
        for attr, value in element.attrib.items():
            key = attr.lower()
            if key in _REFUSED_GROUP_ATTRIBUTES:
                raise _refuse(f"group attribute {attr!r}", _REFUSED_GROUP_ATTRIBUTES[key])
            if key == "functions":
                check_functions(value, f"the functions attribute of {where}")
            elif key not in _GROUP_PLAIN_ATTRIBUTES:
                if key in _REFUSED_FUNCTIONS:
                    raise _refuse(f"group function {attr!r}", _REFUSED_FUNCTIONS[key])
                check_arguments(value, f"the {attr} attribute of {where}")
    if tag != "doc":
        _check_text(element.text, where)
    for child in element:
        _check_element(child, depth + 1)
        _check_text(child.tail, where)


def _etree(text: str) -> ET.Element:
    """Build the tree the way TTP does (``_template_class.construct_etree``)."""
    try:
        root = ET.XML(text)
        if root.tag.lower() != "template":
            root = ET.XML(f"<template>\n{text}\n</template>")
    except ET.ParseError:
        try:
            root = ET.XML(f"<template>\n{text}\n</template>")
        except ET.ParseError as exc:
            raise TemplateError(f"the TTP template is not valid XML: {exc}") from None
    return root


def check_untrusted(text: str) -> None:
    """Raise UnsafeTemplate (a TemplateError) if ``text`` uses a refused TTP feature."""
    if _DECLARATION.search(text):
        raise _refuse("<!DOCTYPE>/<!ENTITY> declarations", "entities can expand without bound")
    _check_element(_etree(text))
