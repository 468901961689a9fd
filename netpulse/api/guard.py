"""The first thing every request meets: the API key, then the body's size and shape.

An ASGI middleware rather than route dependencies, because FastAPI reads and parses a body
before it runs a route's dependencies: a client without the key would otherwise learn
validation details (422 instead of 403), and any client could make the controller read and
parse a body of any size or depth. Here, in order:

1. a route that needs the key (all but :data:`netpulse.api.auth.OPEN_PATHS` and the
   dashboard under ``/ui``, which checks its own session cookie) without a valid key gets
   403 before one byte of the body is read (the key's scopes are the routes' business,
   :mod:`netpulse.api.auth`); the caller is left in the scope's state;
2. a body larger than ``server.max_body_bytes`` gets 413 (a multipart upload: larger than the
   file limit plus room for its form fields), whether it says its length or not;
3. a JSON body nested deeper than ``server.max_json_depth`` or holding lone UTF-16
   surrogates gets 422 with a sentence (:mod:`netpulse.api.json_body`); the body is not
   parsed here for that, except in the rare case of a surrogate escape, so a route still
   parses it once.

The body, once read, is handed to the route unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from netpulse.api.auth import OPEN_PATHS, PRINCIPAL_STATE, identify, missing_key_message
from netpulse.api.errors import REDIS_AWAY_MESSAGE
from netpulse.api.json_body import BodyRejected, check_shape
from netpulse.api.ui.paths import is_ui_path
from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS
from netpulse.storage.files import MAX_FILE_BYTES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Room for a multipart upload's other fields (the job as JSON) and the part headers.
MULTIPART_OVERHEAD = 1024 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def _reply(send: Send, status: int, detail: Any, retry_after: int | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    def __init__(self, app: ASGIApp, *, header: str, max_body: int, max_depth: int) -> None:
        self.app = app
        self.header = header.lower().encode("latin-1")
        self.header_name = header
        self.max_body = max_body
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        # The dashboard (/ui) logs in with its own session cookie (api/ui/access.py).
        if scope["path"] not in OPEN_PATHS and not is_ui_path(scope["path"]):
            state = scope["app"].state
            try:
                principal = await identify(headers.get(self.header), state.api_key, state.redis)
            except REDIS_OUTAGE_ERRORS:
                await _reply(send, 503, REDIS_AWAY_MESSAGE, retry_after=2)
                return
            if principal is None:
                await _reply(send, 403, missing_key_message(self.header_name))
                return
            scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
        multipart = content_type.startswith("multipart/form-data")
        limit = MAX_FILE_BYTES + MULTIPART_OVERHEAD if multipart else self.max_body
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _reply(send, 413, self._too_large(int(declared), limit, multipart))
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away; nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _reply(send, 413, self._too_large(size, limit, multipart))
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and not multipart and self._is_json(content_type):
            try:
                check_shape(body, self.max_depth)
            except BodyRejected as exc:
                await _reply(send, 422, str(exc))
                return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    def _is_json(content_type: str) -> bool:
        # No content type: FastAPI reads such a body as JSON too.
        return not content_type or "json" in content_type

    @staticmethod
    def _too_large(size: int, limit: int, multipart: bool) -> str:
        what = "multipart upload" if multipart else "request body"
        setting = "the file limit" if multipart else "server.max_body_bytes"
        return f"the {what} has more than {limit} bytes (at least {size}); the limit is {setting}"


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the route the body already read, then waits as the server's
    would (for the disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
