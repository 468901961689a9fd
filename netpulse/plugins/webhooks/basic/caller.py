"""`basic`: send the event to the configured URL with the configured method.

In the delivery service it sends through the service's bare-aiohttp sender
(``context.sender``); elsewhere through an httpx client (``context.http``, or its own). Both
sit on the guarded connector, which judges every address it connects to by the SSRF policy
and pins the connection to it (the original host stays in ``Host`` and TLS SNI), so a DNS
answer cannot change between check and connect. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from netpulse.plugin_api import (
    TRANSPORT_ERRORS,
    AttemptOutcome,
    BaseWebHookCaller,
    DeliveryContext,
    DestinationRefused,
    ExecutionRequest,
    JobSnapshot,
    Verdict,
    build_signature_headers,
    classify_exception,
    classify_response,
    is_timeout,
    make_client,
    remote_ip,
)

#: How much of a receiver's answer the delivery log keeps.
RESPONSE_EXCERPT_BYTES = 4096


class BasicWebHookCaller(BaseWebHookCaller):
    webhook_name = "basic"
    #: The built-in caller never reads the request: the service need not rebuild it.
    uses_request = False

    def header_map(self, context: DeliveryContext, webhook_id: str, body: bytes) -> dict[str, str]:
        """User headers first, then ours: the signature headers, User-Agent and (unless the
        user set one) Content-Type. Names compare case-insensitively, so none is sent twice
        and ours cannot be overridden."""
        ours = {"User-Agent": context.user_agent}
        ours.update(
            build_signature_headers(
                webhook_id, body, context.signing_secrets, signing_keys=context.signing_keys
            )
        )
        replaced = {name.lower() for name in ours}
        headers = {
            name: value
            for name, value in (self.webhook.headers or {}).items()
            if name.lower() not in replaced
        }
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = self.webhook.content_type or "application/json"
        headers.update(ours)
        return headers

    def headers(self, context: DeliveryContext, webhook_id: str, body: bytes) -> httpx.Headers:
        """:meth:`header_map` as httpx headers."""
        return httpx.Headers(self.header_map(context, webhook_id, body))

    async def acall(
        self, req: ExecutionRequest | None, job: JobSnapshot, result: Any, **kwargs: Any
    ) -> AttemptOutcome:
        context: DeliveryContext = kwargs["context"]
        if context.sender is not None:
            return await self._send_bare(context, kwargs["webhook_id"], kwargs["body"])
        return await self._send_httpx(context, kwargs["webhook_id"], kwargs["body"])

    async def _send_bare(
        self, context: DeliveryContext, webhook_id: str, body: bytes
    ) -> AttemptOutcome:
        """Through the service's bare-aiohttp sender (same guard, less CPU than httpx)."""
        assert context.sender is not None
        auth = None
        if self.webhook.auth is not None:
            auth = (self.webhook.auth[0], self.webhook.auth[1].get_secret_value())
        try:
            answer = await context.sender.send(
                self.webhook.method,
                self.webhook.url,
                body=body,
                headers=self.header_map(context, webhook_id, body),
                auth=auth,
                cookies=self.webhook.cookies,
                timeout=self.webhook.timeout,
                read_limit=RESPONSE_EXCERPT_BYTES,
            )
        except DestinationRefused as exc:
            return AttemptOutcome(
                Verdict.GIVE_UP, reason=f"refused by the SSRF guard: {exc}", refused=True
            )
        except TRANSPORT_ERRORS as exc:
            return self._no_answer(exc)
        judged = classify_response(answer.status_code, answer.headers, time.time())
        return AttemptOutcome(
            judged.verdict,
            reason=judged.reason,
            status_code=answer.status_code,
            remote_ip=answer.remote_ip,
            response_body=answer.body.decode(errors="replace"),
            retry_after=judged.retry_after,
        )

    def _no_answer(self, exc: BaseException) -> AttemptOutcome:
        outcome = classify_exception(exc)
        if is_timeout(exc):
            outcome.reason = f"timed out after {self.webhook.timeout:g} s"
        return outcome

    async def _send_httpx(
        self, context: DeliveryContext, webhook_id: str, body: bytes
    ) -> AttemptOutcome:
        """Through httpx: the service's guarded client, or one of its own outside it."""
        auth = None
        if self.webhook.auth is not None:
            user, password = self.webhook.auth
            auth = httpx.BasicAuth(user, password.get_secret_value())
        client = context.http
        owns_client = client is None
        if client is None:  # outside the delivery service: a guarded client of our own
            client = make_client(context.policy, max_connections=1)
        try:
            response = await client.request(
                self.webhook.method,
                self.webhook.url,
                content=body,
                headers=self.headers(context, webhook_id, body),
                cookies=self.webhook.cookies,
                auth=auth,
                timeout=self.webhook.timeout,
            )
        except DestinationRefused as exc:
            return AttemptOutcome(
                Verdict.GIVE_UP, reason=f"refused by the SSRF guard: {exc}", refused=True
            )
        except TRANSPORT_ERRORS as exc:
            return self._no_answer(exc)
        finally:
            if owns_client:
                await client.aclose()
        judged = classify_response(response.status_code, response.headers, time.time())
        return AttemptOutcome(
            judged.verdict,
            reason=judged.reason,
            status_code=response.status_code,
            remote_ip=remote_ip(response),
            response_body=response.content[:RESPONSE_EXCERPT_BYTES].decode(errors="replace"),
            retry_after=judged.retry_after,
        )

    def call(
        self, req: ExecutionRequest | None, job: JobSnapshot, result: Any, **kwargs: Any
    ) -> AttemptOutcome:
        """Synchronous form, for use outside the delivery service's event loop."""
        return asyncio.run(self.acall(req=req, job=job, result=result, **kwargs))
