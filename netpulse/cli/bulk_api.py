"""The HTTP calls of `netpulse exec`: submit a bulk request, ask about a job, cancel one.

One ``httpx.Client`` is shared by the submitter and the job watchers (it is thread-safe);
its pool has room for every watcher's long poll plus the submitter, so a submission never
waits for a poll to end.

A bulk request is sent with an ``Idempotency-Key``: when the controller does not answer
(dropped connection, timeout), or answers 503 (Redis unreachable, nothing stored) or 409
(the same key still being processed), the same request is sent again with the same key, and
the server answers the first reply again rather than queue the jobs twice.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

#: Tries of one bulk request, and the pause before each retry (s).
SUBMIT_PAUSES = (0.5, 1.0, 2.0, 4.0)
#: Seconds a request may take, beyond any server-side wait it asks for.
REQUEST_TIMEOUT = 60.0


class ControllerUnreachable(Exception):
    """The controller did not answer a request, even after retries."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any

    @property
    def detail(self) -> str:
        """The reply's reason as one sentence (``detail`` is a string or FastAPI's list)."""
        detail = self.body.get("detail") if isinstance(self.body, dict) else None
        if isinstance(detail, list):
            parts = []
            for err in detail:
                if isinstance(err, dict):
                    where = ".".join(str(p) for p in err.get("loc", []) if p != "body")
                    parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
            return "; ".join(parts) or f"HTTP {self.status}"
        return str(detail) if detail else f"HTTP {self.status}"


class Api:
    """The controller at ``url``, with the API key in ``header``."""

    def __init__(self, url: str, api_key: str, header: str, connections: int) -> None:
        self._client = httpx.Client(
            base_url=url.rstrip("/"),
            headers={header: api_key},
            timeout=REQUEST_TIMEOUT,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    def close(self) -> None:
        self._client.close()

    def submit(self, body: dict[str, Any], stop: threading.Event) -> Reply:
        """``POST /device/bulk``, retried with the same idempotency key while the
        controller does not answer; ControllerUnreachable when it never did (or ``stop``
        was set between tries): whether the jobs were queued is then unknown."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        last = "no answer"
        for pause in (0.0, *SUBMIT_PAUSES):
            if pause and stop.wait(pause):
                break
            try:
                reply = self._client.post("/device/bulk", json=body, headers=headers)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if reply.status_code in (409, 503):
                last = f"HTTP {reply.status_code}"
                continue
            return Reply(reply.status_code, _json(reply))
        raise ControllerUnreachable(last)

    def job(self, job_id: str, wait: float) -> Reply:
        """``GET /jobs/{id}?wait=``: answered as soon as the job ends, or after ``wait``."""
        reply = self._client.get(
            f"/jobs/{job_id}",
            params={"wait": round(wait, 1)},
            timeout=REQUEST_TIMEOUT + wait,
        )
        return Reply(reply.status_code, _json(reply))

    def cancel(self, job_id: str) -> Reply:
        """``DELETE /jobs/{id}``: a queued job becomes canceled (a running one would be
        stopped: the caller asks only for jobs it saw queued)."""
        reply = self._client.delete(f"/jobs/{job_id}")
        return Reply(reply.status_code, _json(reply))


def _json(reply: httpx.Response) -> Any:
    try:
        return reply.json()
    except ValueError:
        return {"detail": reply.text[:200] or f"HTTP {reply.status_code}"}
