"""`/template`: render a template or parse device output without touching a device.

Both answers are bare JSON values (the rendered string; the parsed structure), as the public
client expects. A problem with the template, the variables or the output is 422 with a
``detail`` sentence naming it.

``context`` of a parse may also be a list of outputs (one template, many outputs): the
answer is the list of parsed structures in the same order, and the first output that fails
makes the whole request 422 naming its index. One request instead of hundreds is what lets
bulk parsing run at nearly the speed of calling the parser in-process.

Where the work runs: always in the template sandbox (``netpulse/templates/sandbox.py``),
child processes with a time and a memory limit, because a template from a client may hold a
regular expression that runs for hours or a Jinja2 expression that fills the memory; such a
template costs its own request a 422 and nobody else anything.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from netpulse.api.auth import needs
from netpulse.security.api_keys import Scope
from netpulse.templates import service
from netpulse.templates.contract import TemplateError
from netpulse.templates.sandbox import TemplateSandbox

router = APIRouter(prefix="/template", tags=["templates"], dependencies=[needs(Scope.EXEC)])

_REF = (
    "Template text, `file:<name>` (from templates.directory) or an http(s) URL (only with "
    "templates.allow_http)."
)


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(service.DEFAULT_RENDERER, description="Renderer plugin.")
    template: str = Field(..., description=_REF)
    context: dict[str, Any] = Field(default_factory=dict, description="Template variables.")


class ParseRequest(BaseModel):
    """Fields other than name/template/context are the parser's options."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(service.DEFAULT_PARSER, description="Parser plugin.")
    template: str | None = Field(None, description=_REF + " Omit to use a library template.")
    context: str | list[str] = Field(
        ..., description="The raw device output to parse, or a list of outputs."
    )
    platform: str | None = Field(None, description="Library lookup: e.g. cisco_ios.")
    command: str | None = Field(None, description="Library lookup: e.g. show ip int brief.")
    use_ntc_template: bool | None = None
    use_ttp_template: bool | None = None
    allow_empty: bool | None = Field(None, description="No match is a result, not an error.")

    def options(self) -> dict[str, Any]:
        return self.model_dump(exclude={"name", "template", "context"}, exclude_none=True)


def _json(value: Any) -> Response:
    """Serialise once, without FastAPI's per-item encoder (parsed tables are big)."""
    body = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    return Response(body.encode(), media_type="application/json")


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, message)


async def _render(request: Request, name: str | None, body: RenderRequest) -> Response:
    sandbox: TemplateSandbox = request.app.state.templates
    settings = request.app.state.settings
    try:
        rendered = await sandbox.call("render", name, body.template, body.context, settings)
    except TemplateError as exc:
        raise _unprocessable(str(exc)) from None
    return _json(rendered)


async def _parse(request: Request, name: str | None, body: ParseRequest) -> Response:
    """In the sandbox, however small: a tiny template can hold a regular expression that
    runs for hours."""
    sandbox: TemplateSandbox = request.app.state.templates
    settings = request.app.state.settings
    options = body.options()
    if isinstance(body.context, str):
        try:
            parsed = await sandbox.call(
                "parse", name, body.template, body.context, options, settings
            )
        except TemplateError as exc:
            raise _unprocessable(str(exc)) from None
        return _json(parsed)
    # A list is shared out among the sandbox's processes, which parse their parts at once.
    parts = _share(body.context, sandbox.workers)
    try:
        answers = await asyncio.gather(
            *(
                sandbox.call("parse_each", name, body.template, part, options, settings)
                for part in parts
            )
        )
    except TemplateError as exc:
        raise _unprocessable(str(exc)) from None
    outcomes = [outcome for answer in answers for outcome in answer]
    for index, outcome in enumerate(outcomes):
        if outcome.error is not None:
            raise _unprocessable(f"output {index}: {outcome.error}")
    return _json([outcome.parsed for outcome in outcomes])


def _share(outputs: list[str], workers: int) -> list[list[str]]:
    """``outputs`` in at most ``workers`` consecutive parts (order kept), none tiny: a part
    costs a round trip to a sandbox process."""
    if not outputs:
        return [outputs]
    parts = max(1, min(workers, len(outputs) // 8))
    size = -(-len(outputs) // parts)
    return [outputs[i : i + size] for i in range(0, len(outputs), size)] or [outputs]


@router.post("/render", response_model=str)
async def render(body: RenderRequest, request: Request) -> Response:
    """Render `template` with `context`; the rendered text as a JSON string."""
    return await _render(request, body.name, body)


@router.post("/render/{name}", response_model=str)
async def render_with(name: str, body: RenderRequest, request: Request) -> Response:
    """Like `/render`, with the renderer named in the path."""
    return await _render(request, name, body)


@router.post("/parse", response_model=Any)
async def parse(body: ParseRequest, request: Request) -> Response:
    """Parse `context` (device output, or a list of outputs) with `template` or a library
    template."""
    return await _parse(request, body.name, body)


@router.post("/parse/{name}", response_model=Any)
async def parse_with(name: str, body: ParseRequest, request: Request) -> Response:
    """Like `/parse`, with the parser named in the path."""
    return await _parse(request, name, body)
