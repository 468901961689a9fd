"""A third-party webhook caller, installed through the `netpulse.webhooks` entry-point group.

It posts its own small body with a marker header, and asks for a retry when told to by the
receiver's 409, to show a caller can steer retries without knowing the schedule.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from netpulse.webhooks.callers import BaseWebHookCaller, GiveUp, RetryDelivery


class RecordingCaller(BaseWebHookCaller):
    webhook_name = "recording"

    def call(self, req: Any, job: Any, result: Any, **kwargs: Any) -> None:
        body = {
            "caller": "recording",
            "job_id": job.id,
            "job_status": job.status,
            "host": req.connection_args.host,
            "event_type": kwargs["event"]["event_type"],
            "attempt": kwargs["attempt"],
        }
        reply = httpx.post(
            self.webhook.url,
            content=json.dumps(body),
            headers={"X-Recording": "yes", "webhook-id": kwargs["webhook_id"]},
            timeout=self.webhook.timeout,
        )
        if reply.status_code == 409:
            raise RetryDelivery("receiver asked for another try", after=0.2)
        if reply.status_code == 418:
            raise GiveUp("receiver is a teapot")


__all__ = ["RecordingCaller"]
