"""The contract of a webhook caller plugin (the specification's `BaseWebHookCaller`).

The delivery service instantiates the caller with the job's webhook configuration and calls
``call(req=req, job=job, result=result, **kwargs)``. A caller says how the attempt went
without knowing about schedules:

- return normally (``None`` or an ``AttemptOutcome`` whose verdict is ``success``): delivered;
- raise :class:`RetryDelivery` (optionally with ``after`` seconds) or return an outcome with
  verdict ``retry``: try again later, following the retry policy;
- raise :class:`GiveUp` or return verdict ``give_up``: stop, the delivery is failed;
- any other exception: logged and retried.

``kwargs`` carries, each value once: ``event`` (the payload as a dict), ``body`` (its JSON
bytes), ``webhook_id``, ``attempt`` (1-based) and ``context`` (a :class:`DeliveryContext`:
what the service lends, not what the event is).
Callers whose work is I/O may override the coroutine ``acall``; the default runs ``call`` in a
thread so a plain synchronous caller works unchanged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from netpulse.registry import PluginRegistry

if TYPE_CHECKING:
    import httpx

    from netpulse.models.request import ExecutionRequest
    from netpulse.models.webhook import WebhookConfig
    from netpulse.net.client import GuardedSender
    from netpulse.net.ssrf import DestinationPolicy
    from netpulse.webhooks.store import JobSnapshot


class RetryDelivery(Exception):
    """The caller asks for another attempt (after ``after`` seconds, if given)."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class GiveUp(Exception):
    """The caller says further attempts are pointless."""


class Verdict(StrEnum):
    """How one attempt went: delivered, try again later, or stop for good."""

    SUCCESS = "success"
    RETRY = "retry"
    GIVE_UP = "give_up"


@dataclass
class AttemptOutcome:
    """What one attempt did: the one outcome type, from the caller's answer and the retry
    policy's judgement of an HTTP reply (``webhooks.delivery.retry``) to the attempt log
    (never with secrets). ``refused`` marks a destination the SSRF guard refused (it does not
    count as a failure of the origin)."""

    verdict: Verdict
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
        reason = "" if self.reason is None else str(self.reason)
        try:
            verdict = Verdict(self.verdict)
        except ValueError:
            reason = f"caller returned the unknown verdict {self.verdict!r}; retrying. {reason}"
            verdict = Verdict.RETRY
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
    """What the delivery service lends a caller for one attempt: the signing secrets, the
    destination policy, its User-Agent and its HTTP client.

    ``http`` is the service's shared client (``netpulse.net.client.make_client``): every
    connection it opens is judged by the destination ``policy`` first, so a caller that
    sends through it, to any URL, cannot reach an address the SSRF policy refuses. The
    event's values (id, attempt number, body) are the call's keyword arguments, not
    repeated here.
    """

    signing_secrets: list[str]
    policy: DestinationPolicy
    user_agent: str
    http: httpx.AsyncClient | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Ed25519 keys (``whsk_``) each event is also signed with (``v1a``).
    signing_keys: list[str] = field(default_factory=list)
    #: The service's bare-aiohttp sender on the same guard (``net.client.GuardedSender``):
    #: the built-in caller's fast path; other callers use ``http``.
    sender: GuardedSender | None = None


class BaseWebHookCaller:
    """Base class of webhook callers; subclasses set ``webhook_name`` and implement ``call``."""

    webhook_name: ClassVar[str] = ""
    #: False: the caller never reads ``req``; the service then passes None instead of
    #: rebuilding the request from its stored form for each attempt.
    uses_request: ClassVar[bool] = True

    def __init__(self, webhook: WebhookConfig) -> None:
        self.webhook = webhook

    def call(
        self, req: ExecutionRequest | None, job: JobSnapshot, result: Any, **kwargs: Any
    ) -> AttemptOutcome | None:
        """One attempt. ``req`` is the job's request (credentials removed; None for an
        event about no job, ``endpoint.*``), ``job`` the job as it ended, ``result`` the
        event's ``result``; ``kwargs`` carries ``event``, ``body`` (the bytes to send: the
        payload template's output when the webhook has one), ``webhook_id``, ``attempt`` and
        ``context`` (see the module docstring)."""
        raise NotImplementedError

    async def acall(
        self, req: ExecutionRequest | None, job: JobSnapshot, result: Any, **kwargs: Any
    ) -> AttemptOutcome | None:
        """The attempt as a coroutine; by default ``call`` on a thread."""
        return await asyncio.to_thread(self.call, req=req, job=job, result=result, **kwargs)


registry: PluginRegistry[BaseWebHookCaller] = PluginRegistry(
    "webhooks", BaseWebHookCaller, "webhook_name"
)
