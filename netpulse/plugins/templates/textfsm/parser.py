"""The ``textfsm`` parser: an inline TextFSM template, or the ntc-templates library.

Options (from the request body or a job's ``parsing``):

- ``platform`` + ``command`` (also accepted inside ``ntc_template_args``, the original API's
  shape): look the template up in ntc-templates' index, as ``ntc_templates.parse_output``
  does; used when no template is given, or whenever ``use_ntc_template`` is true.
- ``use_ntc_template`` with ``template`` naming a library file (``cisco_ios_show_version``)
  and no platform/command: that file.
- ``allow_empty``: an output that yields no record is normally an error (the template does
  not fit the output); set it when "nothing" is a legitimate answer.

Records are dicts. Library templates give lower-case keys (as ``parse_output`` does, so code
written against ntc-templates keeps working); inline templates keep their Value names.

Why not call ``parse_output``: it scans the ~1,000-line index with regular expressions on
every call (about 5 ms) and compiles the template again; here the index lookup is cached per
platform and command, and each thread keeps its compiled state machines.
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any, ClassVar

import textfsm
from textfsm import clitable

from netpulse.templates.contract import BaseTemplatePlugin, TemplateError, TemplateNotFound

_LIBRARY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}")
_DRIVER_SUFFIXES = ("_ssh", "_telnet", "_serial")
_FSM_CACHE_SIZE = 64


def ntc_template_dir() -> str:
    """Where ntc-templates keeps its index and templates (``NTC_TEMPLATES_DIR`` overrides)."""
    from ntc_templates.parse import _get_template_dir

    return _get_template_dir()


@lru_cache(maxsize=1)
def _index() -> clitable.IndexTable:
    return clitable.CliTable("index", ntc_template_dir()).index


@lru_cache(maxsize=4096)
def _lookup(platform: str, command: str) -> str | None:
    """The index's ``Template`` column for platform+command (``a:b`` for merged templates)."""
    index = _index()
    row = index.GetRowMatch({"Platform": platform, "Command": command})
    return index.index[row]["Template"] if row else None


def library_templates(platform: str, command: str) -> list[str]:
    """Template file names for ``platform`` and ``command``; TemplateNotFound if none.

    Netmiko device types (``cisco_ios_telnet``) are tried without their transport suffix.
    """
    candidates = [platform]
    candidates += [platform.removesuffix(s) for s in _DRIVER_SUFFIXES if platform.endswith(s)]
    for candidate in candidates:
        found = _lookup(candidate, command.strip())
        if found:
            return found.split(":")
    raise TemplateNotFound(
        f"ntc-templates has no template for platform {platform!r} and command {command!r}"
    )


@lru_cache(maxsize=512)
def _library_text(file_name: str) -> str:
    if not _LIBRARY_NAME.fullmatch(file_name) or ".." in file_name:
        raise TemplateError(f"{file_name!r} is not an ntc-templates template name")
    name = file_name if file_name.endswith(".textfsm") else f"{file_name}.textfsm"
    try:
        with open(os.path.join(ntc_template_dir(), name), encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        raise TemplateNotFound(f"ntc-templates has no template named {file_name!r}") from None


class _FsmCache(threading.local):
    """Compiled state machines of this thread, by template text (a TextFSM object keeps
    parsing state, so it cannot be shared between threads; within a thread it is reset)."""

    def __init__(self) -> None:
        self.machines: OrderedDict[str, textfsm.TextFSM] = OrderedDict()

    def get(self, text: str) -> textfsm.TextFSM:
        fsm = self.machines.get(text)
        if fsm is None:
            fsm = _compile(text)
            self.machines[text] = fsm
            if len(self.machines) > _FSM_CACHE_SIZE:
                self.machines.popitem(last=False)
        else:
            self.machines.move_to_end(text)
            fsm.Reset()
        return fsm


def _compile(text: str) -> textfsm.TextFSM:
    try:
        return textfsm.TextFSM(io.StringIO(text))
    except textfsm.TextFSMTemplateError as exc:
        raise TemplateError(f"the TextFSM template is invalid: {exc}") from None


_FSMS = _FsmCache()


def _records(fsm: textfsm.TextFSM, output: str, lower: bool) -> list[dict[str, Any]]:
    try:
        rows = fsm.ParseText(output)
    except textfsm.TextFSMError as exc:
        raise TemplateError(f"the TextFSM template rejected the output: {exc}") from None
    header = [h.lower() for h in fsm.header] if lower else list(fsm.header)
    return [dict(zip(header, row, strict=True)) for row in rows]


def _merged(templates: list[str], output: str) -> list[dict[str, Any]]:
    """Index rows naming several templates: merge their tables the way clitable does."""
    table = clitable.CliTable("index", ntc_template_dir())
    try:
        table.ParseCmd(output, templates=":".join(templates))
    except (clitable.CliTableError, textfsm.TextFSMError) as exc:
        raise TemplateError(f"the ntc-templates templates rejected the output: {exc}") from None
    header = [h.lower() for h in table.header]
    return [dict(zip(header, row, strict=True)) for row in table]


class TextFSMParser(BaseTemplatePlugin):
    """Parse with TextFSM: inline/file templates or ntc-templates lookups."""

    template_name: ClassVar[str] = "textfsm"

    def parses_inline(self) -> bool:
        # Well under a millisecond per KiB, and no lock; but the first library lookup reads
        # and compiles the ntc-templates index (about a second), which must not stall the API.
        return _index.cache_info().currsize > 0

    def parse(self, template: str | None, output: str, options: dict[str, Any]) -> Any:
        platform, command = _platform_command(options)
        use_library = bool(options.get("use_ntc_template")) or not (template and template.strip())
        if use_library and platform and command:
            files = library_templates(platform, command)
            what = f"the ntc-templates template for {platform!r} {command!r}"
            if len(files) > 1:
                records = _merged(files, output)
            else:
                records = _records(_FSMS.get(_library_text(files[0])), output, lower=True)
        elif use_library and template and template.strip():
            name = template.strip()
            what = f"the ntc-templates template {name!r}"
            records = _records(_FSMS.get(_library_text(name)), output, lower=True)
        elif use_library:
            raise TemplateError(
                "textfsm parsing needs a template, or platform and command to find one in "
                "ntc-templates"
            )
        else:
            what = "the TextFSM template"
            records = _records(_FSMS.get(template or ""), output, lower=False)
        if not records and output.strip() and not options.get("allow_empty"):
            raise TemplateError(
                f"{what} matched nothing in the output (set allow_empty if an empty result "
                "is expected)"
            )
        return records


def _platform_command(options: dict[str, Any]) -> tuple[str | None, str | None]:
    nested = options.get("ntc_template_args") or {}
    if not isinstance(nested, dict):
        raise TemplateError("ntc_template_args must be an object with platform and command")
    platform = options.get("platform") or nested.get("platform")
    command = options.get("command") or nested.get("command")
    for name, value in (("platform", platform), ("command", command)):
        if value is not None and not isinstance(value, str):
            raise TemplateError(f"{name} must be a string")
    return platform, command
