"""`/template`: render a template or parse device output without touching a device.

Both answers are bare JSON values (the rendered string; the parsed structure), as the public
client expects. A problem with the template, the variables or the output is 422 with a
``detail`` sentence naming it.

``context`` of a parse may also be a list of outputs (one template, many outputs): the
answer is the list of parsed structures in the same order, and the first output that fails
makes the whole request 422 naming its index. One request instead of hundreds is what lets
bulk parsing run at nearly the speed of calling the parser in-process.

Where the work runs: a render, a fetched template or a large output goes to the thread pool;
a small parse by a plugin whose ``parses_inline()`` says so (textfsm once its library index
is loaded: well under a millisecond per KiB, no lock) runs on the event loop, because the
thread hop would cost more than the parse.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from netpulse.config import Settings
from netpulse.plugins.templates import TemplateError
from netpulse.templates import service
from netpulse.templates.sources import HTTP_PREFIXES

router = APIRouter(prefix="/template", tags=["templates"])

INLINE_PARSE_CHARS = 64 * 1024  # bigger outputs are parsed in the thread pool

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


async def _settings(request: Request) -> Settings:
    """Async so FastAPI does not hop to a thread just to read an attribute."""
    return request.app.state.settings


def _json(value: Any) -> Response:
    """Serialise once, without FastAPI's per-item encoder (parsed tables are big)."""
    body = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    return Response(body.encode(), media_type="application/json")


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, message)


def _render(name: str, body: RenderRequest, settings: Settings) -> Response:
    try:
        return _json(service.render(name, body.template, body.context, settings))
    except TemplateError as exc:
        raise _unprocessable(str(exc)) from None


def _parse(name: str, body: ParseRequest, settings: Settings) -> Response:
    options = body.options()
    if isinstance(body.context, str):
        try:
            return _json(service.parse(name, body.template, body.context, options, settings))
        except TemplateError as exc:
            raise _unprocessable(str(exc)) from None
    outcomes = service.parse_each(name, body.template, body.context, options, settings)
    for index, outcome in enumerate(outcomes):
        if outcome.error is not None:
            raise _unprocessable(f"output {index}: {outcome.error}")
    return _json([outcome.parsed for outcome in outcomes])


def _inline(name: str, body: ParseRequest) -> bool:
    try:
        plugin = service.get_plugin(name, "parse")
    except TemplateError:
        return True  # answered at once with the list of valid names
    template = (body.template or "")[:8].lower()
    size = len(body.context) if isinstance(body.context, str) else sum(map(len, body.context))
    return (
        plugin.parses_inline()
        and size <= INLINE_PARSE_CHARS
        and not template.startswith(HTTP_PREFIXES)
    )


@router.post("/render", response_model=str)
async def render(body: RenderRequest, settings: Settings = Depends(_settings)) -> Response:
    """Render `template` with `context`; the rendered text as a JSON string."""
    return await run_in_threadpool(_render, body.name, body, settings)


@router.post("/render/{name}", response_model=str)
async def render_with(
    name: str, body: RenderRequest, settings: Settings = Depends(_settings)
) -> Response:
    """Like `/render`, with the renderer named in the path."""
    return await run_in_threadpool(_render, name, body, settings)


async def _dispatch_parse(name: str, body: ParseRequest, settings: Settings) -> Response:
    if _inline(name, body):
        return _parse(name, body, settings)
    return await run_in_threadpool(_parse, name, body, settings)


@router.post("/parse", response_model=Any)
async def parse(body: ParseRequest, settings: Settings = Depends(_settings)) -> Response:
    """Parse `context` (device output, or a list of outputs) with `template` or a library
    template."""
    return await _dispatch_parse(body.name, body, settings)


@router.post("/parse/{name}", response_model=Any)
async def parse_with(
    name: str, body: ParseRequest, settings: Settings = Depends(_settings)
) -> Response:
    """Like `/parse`, with the parser named in the path."""
    return await _dispatch_parse(name, body, settings)
