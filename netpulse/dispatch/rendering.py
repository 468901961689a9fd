"""`rendering` in a job: render the payload before it is queued.

Rendering happens at submission, in the template sandbox as for `/template/render`, so an
undefined variable or a refused template is a 422 the client sees at once, and the queued job
(and its results) carry the lines that really run. As in the original NetPulse: the template
is ``rendering.template``, or the payload itself when that is a string or a list of lines
(joined; the public client sends a string command as a one-item list); the context is
``rendering.context`` updated with the payload when the payload is a mapping. The same
context renders ``file_transfer`` paths, its ``execute_command`` and ``script_content``.
"""

from __future__ import annotations

from typing import Any

from netpulse.config import Settings
from netpulse.models.request import ExecutionRequest
from netpulse.templates import sandbox, service
from netpulse.templates.contract import TemplateError

#: Put before a text rendered inline, so that no text starting ``file:`` or ``http`` is
#: ever read as a template reference; removed from the result.
_INLINE = "{# inline #}"


def render_request(req: ExecutionRequest, settings: Settings) -> ExecutionRequest:
    """The request with its payload rendered (unchanged without ``rendering``).

    Raises ``TemplateError`` with a sentence for the client.
    """
    if req.parsing is not None:
        service.check_names(parsing=req.parsing.get("name") or service.DEFAULT_PARSER)
    if req.rendering is None:
        return req
    context: dict[str, Any] = dict(req.rendering.get("context") or {})
    update: dict[str, Any] = {}
    field = "config" if req.is_config else "command"
    payload = getattr(req, field)
    if isinstance(payload, dict):
        context.update(payload)
    if payload not in (None, "", []):
        update[field] = _render_payload(req, payload, context, settings)
    elif req.rendering.get("template") is not None:
        raise TemplateError("rendering.template needs a command or config to stand for")
    if req.file_transfer is not None:
        paths = {
            name: _render_text(req, value, context, settings)
            for name in ("remote_path", "local_path", "execute_command")
            if isinstance(value := getattr(req.file_transfer, name), str)
        }
        update["file_transfer"] = req.file_transfer.model_copy(update=paths)
    script = req.script_content
    if script is not None:
        rendered = _render_text(req, script, context, settings)
        update["driver_args"] = {**req.driver_args, "script_content": rendered}
    return req.model_copy(update=update)


def _render_payload(
    req: ExecutionRequest, payload: Any, context: dict[str, Any], settings: Settings
) -> list[str]:
    assert req.rendering is not None
    template = req.rendering.get("template")
    if isinstance(payload, dict):
        pass  # the payload is the context (merged by the caller)
    elif template is None and isinstance(payload, str):
        template = payload
    elif template is None and isinstance(payload, list):
        template = "\n".join(payload)
    elif template is None:
        raise TemplateError("rendering needs a template (rendering.template)")
    # In the sandbox: the template is the client's, and may take forever or fill the memory.
    lines: list[str] = sandbox.shared(settings).run(
        "render_lines", req.rendering.get("name"), template, context, settings
    )
    if not lines:
        raise TemplateError("the template rendered to nothing: no line to run")
    return lines


def _render_text(
    req: ExecutionRequest, text: str, context: dict[str, Any], settings: Settings
) -> str:
    """A path, a command or a script rendered as an inline template: only when it holds
    template syntax, so that a path is never read as a template reference (``file:``)."""
    assert req.rendering is not None
    if "{{" not in text and "{%" not in text:
        return text
    rendered: str = sandbox.shared(settings).run(
        "render", req.rendering.get("name"), _INLINE + text, context, settings
    )
    return rendered.removeprefix(_INLINE)
