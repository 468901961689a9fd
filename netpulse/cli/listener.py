"""A local webhook receiver for ``netpulse webhook listen``: see what NetPulse sends.

It accepts any method on any path, prints one line per request (method, path, webhook-id,
event type, status, a short result preview, and whether the signature verifies) and answers:

- 200 when no secret is given (signature shown as "not signed" or "not checked");
- with ``--secret``: 200 when the signature verifies, 401 otherwise (unsigned, tampered,
  stale timestamp). Answering 401 rather than 200 makes a signing misconfiguration visible
  on the sender too: its delivery log records the failure and the retries.

Verification uses the reference ``standardwebhooks`` library rather than our own signer, so
the listener is an independent check of what :mod:`netpulse.webhooks.signing` produces.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import uvicorn
from rich.console import Console
from rich.text import Text
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from netpulse.models.signing_secret import PUBLIC_KEY_PREFIX, b64_key
from netpulse.webhooks.signing import (
    HEADER_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    validate_secret,
    verify_asymmetric,
)

SignatureState = Literal["valid", "INVALID", "not signed", "not checked"]
PREVIEW_CHARS = 100


@dataclass(frozen=True)
class ReceivedEvent:
    """One request the listener received, as printed; handed to ``on_event``."""

    method: str
    path: str
    webhook_id: str | None
    event_type: str | None
    status: str | None
    preview: str
    signature: SignatureState
    signature_detail: str
    response_status: int
    headers: dict[str, str] = field(repr=False)
    body: bytes = field(repr=False)


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _one_line(text: str, limit: int = PREVIEW_CHARS) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _preview(payload: Any, body: bytes) -> str:
    """A short, single-line summary of the result, for both payload forms we send."""
    if not isinstance(payload, dict):
        return _one_line(body.decode("utf-8", "replace")) if body else "(empty body)"
    result = payload.get("result")
    if isinstance(result, str):  # the specification's "text" form
        return _one_line(result) or "(empty result)"
    if isinstance(result, dict):  # the structured WebhookEvent form
        kind = result.get("type")
        error = result.get("error")
        if isinstance(error, dict):
            detail = f"{error.get('type', 'error')}: {error.get('message', '')}"
        elif error:
            detail = str(error)
        else:
            retval = result.get("retval")
            outputs = [r.get("stdout") for r in retval or [] if isinstance(r, dict)]
            detail = next((o for o in outputs if o), None) or json.dumps(retval, default=str)
        return _one_line(f"{kind}: {detail}" if kind else detail)
    return _one_line(json.dumps(payload, default=str))


#: How far a ``webhook-timestamp`` may be from now (the reference verifier's tolerance).
TIMESTAMP_TOLERANCE = 300


class PublicKeyVerifier:
    """Verifies ``v1a`` (Ed25519) signatures with a ``whpk_`` public key, the timestamp
    within :data:`TIMESTAMP_TOLERANCE` as the reference verifier does for ``v1``."""

    def __init__(self, public_key: str) -> None:
        b64_key(public_key, PUBLIC_KEY_PREFIX, "--public-key")  # ValueError when malformed
        self.public_key = public_key

    def verify(self, body: bytes, headers: dict[str, str], json_parse: bool = False) -> None:
        try:
            timestamp = int(headers.get(HEADER_TIMESTAMP, ""))
        except ValueError:
            raise ValueError("no valid webhook-timestamp") from None
        if abs(time.time() - timestamp) > TIMESTAMP_TOLERANCE:
            raise ValueError("webhook-timestamp too far from now")
        if not verify_asymmetric(
            self.public_key,
            headers.get(HEADER_ID, ""),
            timestamp,
            body,
            headers.get(HEADER_SIGNATURE, ""),
        ):
            raise ValueError("no v1a signature matches the public key")


def _check_signature(
    verifier: Webhook | PublicKeyVerifier | None, body: bytes, headers: dict[str, str]
) -> tuple[SignatureState, str]:
    signed = HEADER_SIGNATURE in headers
    if verifier is None:
        if signed:
            return "not checked", "start the listener with --secret or --public-key to verify"
        return "not signed", ""
    if not signed:
        return "INVALID", "request is not signed"
    try:
        verifier.verify(body, headers, json_parse=False)
    except Exception as exc:  # the library raises several types on malformed input
        return "INVALID", str(exc) or type(exc).__name__
    return "valid", ""


def _render(event: ReceivedEvent) -> Text:
    """Build the printed line as Text so payload content is never read as rich markup."""
    style = {"valid": "green", "INVALID": "bold red"}.get(event.signature, "yellow")
    signature = Text.assemble(("signature: ", "dim"), (event.signature, style))
    if event.signature_detail:
        signature.append(f" ({event.signature_detail})", style="dim")
    line = Text.assemble(
        (datetime.now().strftime("%H:%M:%S"), "dim"),
        " ",
        (event.method, "bold"),
        " ",
        event.path,
        "  id=",
        event.webhook_id or "-",
        "  event=",
        (event.event_type or "-", "cyan"),
        "  status=",
        event.status or "-",
        "  -> ",
        (str(event.response_status), "green" if event.response_status < 400 else "red"),
        "  ",
        signature,
        "\n    result: ",
        (event.preview, "dim"),
    )
    return line


def create_listener_app(
    secret: str | None,
    console: Console | None = None,
    on_event: Callable[[ReceivedEvent], None] | None = None,
    public_key: str | None = None,
) -> Starlette:
    """Return the ASGI app. ``secret`` (``v1``) or ``public_key`` (``v1a``) enables
    verification (ValueError if malformed); ``console`` receives the printed lines;
    ``on_event`` is called with each ReceivedEvent.
    """
    verifier: Webhook | PublicKeyVerifier | None = None
    if public_key:
        verifier = PublicKeyVerifier(public_key)
    elif secret:
        verifier = Webhook(validate_secret(secret))
    out = console or Console()

    async def receive(request: Request) -> JSONResponse:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        payload = _parse_json(body)
        fields = payload if isinstance(payload, dict) else {}
        state, detail = _check_signature(verifier, body, headers)
        status_code = 401 if state == "INVALID" else 200
        event = ReceivedEvent(
            method=request.method,
            path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            webhook_id=headers.get(HEADER_ID),
            event_type=_str_or_none(fields.get("event_type")),
            status=_str_or_none(fields.get("status")),
            preview=_preview(payload, body),
            signature=state,
            signature_detail=detail,
            response_status=status_code,
            headers=headers,
            body=body,
        )
        out.print(_render(event), soft_wrap=True)
        if on_event is not None:
            on_event(event)
        if status_code == 401:
            return JSONResponse({"ok": False, "error": f"signature {detail}"}, status_code=401)
        return JSONResponse({"ok": True})

    # Route treats a plain function as GET-only; an ASGI callable is routed for every method.
    return Starlette(routes=[Route("/{path:path}", _AnyMethod(receive))])


class _AnyMethod:
    """Adapt a request handler to a raw ASGI app so the route accepts every HTTP method."""

    def __init__(self, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive))
        await response(scope, receive, send)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def run_listener(host: str, port: int, secret: str | None, public_key: str | None = None) -> None:
    """Serve the listener until interrupted (blocking). Raises ValueError on a bad secret."""
    console = Console()
    app = create_listener_app(secret, console=console, public_key=public_key)
    shown_host = f"[{host}]" if ":" in host else host
    check = (
        "on (401 for bad signatures)"
        if secret or public_key
        else "off (pass --secret or --public-key to verify)"
    )
    console.print(
        Text.assemble(
            ("Listening for webhooks on ", "bold"),
            (f"http://{shown_host}:{port}/", "bold cyan"),
            f"  signature check: {check}",
        ),
        soft_wrap=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
