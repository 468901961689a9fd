"""`basic`: send the event to the configured URL with the configured method.

It sends through the delivery service's client (``context.http``), which judges every
address it connects to by the SSRF policy and pins the connection to it (the original host
stays in ``Host`` and TLS SNI), so a DNS answer cannot change between check and connect.
Redirects are never followed.
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

    def headers(self, context: DeliveryContext, webhook_id: str, body: bytes) -> httpx.Headers:
        """User headers first, then ours: the signature headers and User-Agent cannot be
        overridden (names compare case-insensitively, so none is sent twice)."""
        headers = httpx.Headers(self.webhook.headers or {})
        if "content-type" not in headers:
            headers["Content-Type"] = self.webhook.content_type or "application/json"
        headers["User-Agent"] = context.user_agent
        for name, value in build_signature_headers(
            webhook_id, body, context.signing_secrets, signing_keys=context.signing_keys
        ).items():
            headers[name] = value
        return headers

    async def acall(
        self, req: ExecutionRequest | None, job: JobSnapshot, result: Any, **kwargs: Any
    ) -> AttemptOutcome:
        context: DeliveryContext = kwargs["context"]
        body: bytes = kwargs["body"]
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
                headers=self.headers(context, kwargs["webhook_id"], body),
                cookies=self.webhook.cookies,
                auth=auth,
                timeout=self.webhook.timeout,
            )
        except DestinationRefused as exc:
            return AttemptOutcome(
                Verdict.GIVE_UP, reason=f"refused by the SSRF guard: {exc}", refused=True
            )
        except TRANSPORT_ERRORS as exc:
            outcome = classify_exception(exc)
            if is_timeout(exc):
                outcome.reason = f"timed out after {self.webhook.timeout:g} s"
            return outcome
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
