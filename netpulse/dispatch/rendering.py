"""`rendering` in a job: render the payload before it is queued.

Rendering happens at submission, in the template sandbox as for `/template/render`, so an
undefined variable or a refused template is a 422 the client sees at once, and the queued job
(and its results) carry the lines that really run. As in the original NetPulse: the template
is ``rendering.template``, or the payload itself when that is a string or a list of lines
(joined; the public client sends a string command as a one-item list); the context is
``rendering.context`` updated with the payload when the payload is a mapping.
"""

from __future__ import annotations

from typing import Any

from netpulse.config import Settings
from netpulse.models.request import ExecutionRequest
from netpulse.templates import sandbox, service
from netpulse.templates.contract import TemplateError


def render_request(req: ExecutionRequest, settings: Settings) -> ExecutionRequest:
    """The request with its payload rendered (unchanged without ``rendering``).

    Raises ``TemplateError`` with a sentence for the client.
    """
    if req.parsing is not None:
        service.check_names(parsing=req.parsing.get("name") or service.DEFAULT_PARSER)
    if req.rendering is None:
        return req
    field = "config" if req.is_config else "command"
    payload = getattr(req, field)
    template = req.rendering.get("template")
    context: dict[str, Any] = dict(req.rendering.get("context") or {})
    if isinstance(payload, dict):
        context.update(payload)
    elif template is None and isinstance(payload, str):
        template = payload
    elif template is None and isinstance(payload, list):
        template = "\n".join(payload)
    elif template is None:
        raise TemplateError("rendering needs a template (rendering.template)")
    # In the sandbox: the template is the client's, and may take forever or fill the memory.
    lines = sandbox.shared(settings).run(
        "render_lines", req.rendering.get("name"), template, context, settings
    )
    if not lines:
        raise TemplateError("the template rendered to nothing: no line to run")
    return req.model_copy(update={field: lines})
