"""The ``ttp`` parser: an inline TTP template, or the ttp-templates library.

Options (from the request body or a job's ``parsing``):

- ``platform`` + ``command`` (also inside ``ttp_template_args``, the original API's shape):
  ``ttp_templates.get_template(platform=..., command=...)``, i.e. the library file
  ``platform/<platform>_<command>.txt``; used when no template is given, or whenever
  ``use_ttp_template`` is true. A template ``ttp://<path>`` names a library file directly
  (``ttp://platform/cisco_ios_show_interfaces.txt``), as in TTP itself.
- ``structure``: ``flat_list`` (default: one list of result dicts), ``list`` (TTP's nested
  per-template/per-input lists) or ``dictionary``.
- ``allow_empty``: a result with no match is normally an error; set it when "nothing" is a
  legitimate answer.

Templates sent by clients (inline or fetched) pass :mod:`.safety` first: TTP would otherwise
run their code. Library templates and files from the template directory are trusted.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from typing import Any, ClassVar

from ttp import ttp
from ttp_templates import get_template  # no stubs, no py.typed

from netpulse.plugins.templates.ttp import safety
from netpulse.templates.contract import (
    BaseTemplatePlugin,
    TemplateError,
    TemplateNotFound,
    TrustedText,
)

_STRUCTURES = ("flat_list", "list", "dictionary")
# TTP keeps the parse in progress in a module-global dict (``_ttp_["parser_object"]``,
# ``["results_object"]``, ``["vars"]``): one parse at a time per process.
_LOCK = threading.Lock()


def library_template(platform: str, command: str | None = None, path: str | None = None) -> str:
    """A ttp-templates file by platform+command or by path; TemplateNotFound if absent."""
    try:
        text = get_template(path=path) if path else get_template(platform=platform, command=command)
    except (FileNotFoundError, ValueError, OSError):
        text = None
    if not text:
        what = f"path {path!r}" if path else f"platform {platform!r} and command {command!r}"
        raise TemplateNotFound(f"ttp-templates has no template for {what}")
    return text


def _jsonable(value: Any) -> Any:
    """TTP functions may return IP objects and the like; clients get JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # ipaddress objects, datetimes, ...


def _empty(value: Any) -> bool:
    if isinstance(value, dict | list | tuple):
        return all(_empty(v) for v in (value.values() if isinstance(value, dict) else value))
    return False


def run(template: str, output: str, structure: str) -> Any:
    """Parse ``output`` with ``template`` text (already judged safe or trusted)."""
    # TTP treats a string naming an existing file or directory as that file's content
    # (ttp/utils/loaders.py). A final newline makes sure neither argument names one.
    data = output if output.endswith("\n") else output + "\n"
    text = template if template.endswith("\n") else template + "\n"
    with _LOCK:
        try:
            parser = ttp(data=data, template=text)
            parser.parse(one=True)
            return _jsonable(parser.result(structure=structure))
        except ET.ParseError as exc:
            raise TemplateError(f"the TTP template is not valid XML: {exc}") from None
        except SystemExit:  # TTP's reaction to a function it cannot read
            raise TemplateError(
                "TTP could not read a function or its arguments in the template"
            ) from None
        except TemplateError:
            raise
        except Exception as exc:
            raise TemplateError(f"TTP failed: {type(exc).__name__}: {exc}") from None


class TTPParser(BaseTemplatePlugin):
    """Parse with TTP: inline/file templates or ttp-templates lookups."""

    template_name: ClassVar[str] = "ttp"

    def parse(self, template: str | None, output: str, options: dict[str, Any]) -> Any:
        structure = options.get("structure") or "flat_list"
        if structure not in _STRUCTURES:
            raise TemplateError(f"structure must be one of {', '.join(_STRUCTURES)}")
        text, what = self._template(template, options)
        result = run(text, output, structure)
        if _empty(result) and output.strip() and not options.get("allow_empty"):
            raise TemplateError(
                f"{what} matched nothing in the output (set allow_empty if an empty result "
                "is expected)"
            )
        return result

    def _template(self, template: str | None, options: dict[str, Any]) -> tuple[str, str]:
        nested = options.get("ttp_template_args") or {}
        if not isinstance(nested, dict):
            raise TemplateError("ttp_template_args must be an object with platform and command")
        platform = options.get("platform") or nested.get("platform")
        command = options.get("command") or nested.get("command")
        given = template.strip() if template else ""
        if given.startswith("ttp://"):
            path = given.removeprefix("ttp://")
            return library_template("", path=path), f"the ttp-templates template {path!r}"
        if options.get("use_ttp_template") or not given:
            if not (isinstance(platform, str) and isinstance(command, str)):
                raise TemplateError(
                    "ttp parsing needs a template, or platform and command to find one in "
                    "ttp-templates"
                )
            what = f"the ttp-templates template for {platform!r} {command!r}"
            return library_template(platform, command), what
        if not isinstance(template, TrustedText):
            safety.check_untrusted(template or "")
        return template or "", "the TTP template"
