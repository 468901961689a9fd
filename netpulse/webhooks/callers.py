"""The contract of a webhook caller plugin (the specification's `BaseWebHookCaller`).

The delivery service instantiates the caller with the job's webhook configuration and calls
``call(req=req, job=job, result=result, **kwargs)``. A caller says how the attempt went
without knowing about schedules:

- return normally (``None`` or an ``AttemptOutcome`` whose verdict is ``success``): delivered;
- raise :class:`RetryDelivery` (optionally with ``after`` seconds) or return an outcome with
  verdict ``retry``: try again later, following the retry policy;
- raise :class:`GiveUp` or return verdict ``give_up``: stop, the delivery is failed;
- any other exception: logged and retried.

``kwargs`` carries ``event`` (the payload as a dict), ``body`` (its JSON bytes),
``webhook_id``, ``attempt`` (1-based) and ``context`` (a :class:`DeliveryContext`).
Callers whose work is I/O may override the coroutine ``acall``; the default runs ``call`` in a
thread so a plain synchronous caller works unchanged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from netpulse.registry import PluginRegistry

if TYPE_CHECKING:
    import httpx

    from netpulse.models.webhook import WebhookConfig
    from netpulse.webhooks.ssrf import DestinationPolicy


class RetryDelivery(Exception):
    """The caller asks for another attempt (after ``after`` seconds, if given)."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class GiveUp(Exception):
    """The caller says further attempts are pointless."""


@dataclass
class AttemptOutcome:
    """What one attempt did; stored in the delivery log (never with secrets)."""

    verdict: Literal["success", "retry", "give_up"]
    reason: str = ""
    status_code: int | None = None
    remote_ip: str | None = None
    response_body: str | None = None
    retry_after: float | None = None
    refused: bool = False

    def checked(self) -> AttemptOutcome:
        """This outcome with every field of the type the delivery log stores.

        Custom callers may return bytes for the body, a number for the reason, or an unknown
        verdict; one such outcome must not stop outcomes from being written. An unknown
        verdict counts as a retry (the event is not lost).
        """
        verdict = self.verdict
        reason = "" if self.reason is None else str(self.reason)
        if verdict not in ("success", "retry", "give_up"):
            reason = f"caller returned the unknown verdict {verdict!r}; retrying. {reason}"
            verdict = "retry"
        body = self.response_body
        if isinstance(body, bytes | bytearray):
            body = bytes(body[:4096]).decode(errors="replace")
        elif body is not None:
            body = str(body)[:4096]
        try:
            status = int(self.status_code) if self.status_code is not None else None
        except (TypeError, ValueError):
            status = None
        try:
            after = float(self.retry_after) if self.retry_after is not None else None
        except (TypeError, ValueError):
            after = None
        return AttemptOutcome(
            verdict=verdict,
            reason=reason,
            status_code=status,
            remote_ip=None if self.remote_ip is None else str(self.remote_ip),
            response_body=body,
            retry_after=after,
            refused=bool(self.refused),
        )


@dataclass
class DeliveryContext:
    """What the delivery service lends a caller for one attempt."""

    webhook_id: str
    attempt: int
    body: bytes
    signing_secrets: list[str]
    policy: DestinationPolicy
    user_agent: str
    http: httpx.AsyncClient | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class BaseWebHookCaller:
    """Base class of webhook callers; subclasses set ``webhook_name`` and implement ``call``."""

    webhook_name: ClassVar[str] = ""

    def __init__(self, webhook: WebhookConfig) -> None:
        self.webhook = webhook

    def call(self, req: Any, job: Any, result: Any, **kwargs: Any) -> AttemptOutcome | None:
        raise NotImplementedError

    async def acall(self, req: Any, job: Any, result: Any, **kwargs: Any) -> AttemptOutcome | None:
        return await asyncio.to_thread(self.call, req=req, job=job, result=result, **kwargs)


registry: PluginRegistry[BaseWebHookCaller] = PluginRegistry(
    "webhooks", BaseWebHookCaller, "webhook_name"
)
