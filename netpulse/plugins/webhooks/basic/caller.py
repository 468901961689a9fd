"""`basic`: send the event to the configured URL with the configured method.

The destination is resolved, every resolved address is checked by the SSRF guard, and the
request goes to that checked address (the original host is kept in ``Host`` and TLS SNI), so a
DNS answer cannot change between check and connect. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import httpx

from netpulse.webhooks import retry, signing, ssrf
from netpulse.webhooks.callers import AttemptOutcome, BaseWebHookCaller, DeliveryContext

#: How much of a receiver's answer the delivery log keeps.
RESPONSE_EXCERPT_BYTES = 4096


class BasicWebHookCaller(BaseWebHookCaller):
    webhook_name = "basic"

    def headers(self, context: DeliveryContext) -> httpx.Headers:
        """User headers first, then ours: the signature headers and User-Agent cannot be
        overridden (names compare case-insensitively, so none is sent twice)."""
        headers = httpx.Headers(self.webhook.headers or {})
        if "content-type" not in headers:
            headers["Content-Type"] = "application/json"
        headers["User-Agent"] = context.user_agent
        for name, value in signing.build_headers(
            context.webhook_id, context.body, context.signing_secrets
        ).items():
            headers[name] = value
        return headers

    async def acall(self, req: Any, job: Any, result: Any, **kwargs: Any) -> AttemptOutcome:
        context: DeliveryContext = kwargs["context"]
        _, host, port = ssrf.check_url(self.webhook.url)
        try:
            addresses = await ssrf.resolve_and_check(host, port, context.policy)
        except ssrf.DestinationRefused as exc:
            return AttemptOutcome(
                "give_up", reason=f"refused by the SSRF guard: {exc}", refused=True
            )
        except ssrf.DestinationUnresolvable as exc:
            return AttemptOutcome("retry", reason=str(exc))
        ip = addresses[0]
        url, host_header, extensions = ssrf.pinned_request_args(self.webhook.url, ip)
        headers = self.headers(context)
        headers.update(host_header)
        auth = None
        if self.webhook.auth is not None:
            user, password = self.webhook.auth
            auth = httpx.BasicAuth(user, password.get_secret_value())
        client = context.http
        owns_client = client is None
        if client is None:
            client = httpx.AsyncClient()
        try:
            response = await client.request(
                self.webhook.method,
                url,
                content=context.body,
                headers=headers,
                cookies=self.webhook.cookies,
                auth=auth,
                timeout=self.webhook.timeout,
                follow_redirects=False,
                extensions=extensions,
            )
        except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
            verdict = retry.classify_exception(exc)
            if retry.is_timeout(exc):
                verdict = retry.Verdict("retry", f"timed out after {self.webhook.timeout:g} s")
            return AttemptOutcome(verdict.kind, reason=verdict.reason, remote_ip=ip)
        finally:
            if owns_client:
                await client.aclose()
        verdict = retry.classify_response(response.status_code, response.headers, time.time())
        return AttemptOutcome(
            verdict.kind,
            reason=verdict.reason,
            status_code=response.status_code,
            remote_ip=ip,
            response_body=response.content[:RESPONSE_EXCERPT_BYTES].decode(errors="replace"),
            retry_after=verdict.retry_after,
        )

    def call(self, req: Any, job: Any, result: Any, **kwargs: Any) -> AttemptOutcome:
        """Synchronous form, for use outside the delivery service's event loop."""
        return asyncio.run(self.acall(req=req, job=job, result=result, **kwargs))
