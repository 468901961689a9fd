"""Tell people when an endpoint is disabled or recovers: log, metrics and an event.

The journal learns from the health script that an endpoint was just disabled (or works
again) and calls :meth:`EndpointNotices.send`. The notice is logged, counted in
``netpulse:wh:stats`` (``netpulse_webhook_endpoint_notices`` in ``/metrics``) and recorded
as an ``endpoint.disabled`` / ``endpoint.recovered`` event, which goes to the operator's
``webhooks.notify_endpoint`` whatever its filters and to every endpoint subscribed to it.
Recording uses the same outbox as job events (a synchronous Redis client, on a thread:
notices are rare).
"""

from __future__ import annotations

import asyncio
import logging

from redis import Redis

from netpulse.config import Settings
from netpulse.runtime.redis_conn import connect
from netpulse.webhooks import store
from netpulse.webhooks.endpoints import directory, health
from netpulse.webhooks.outbox.record import EventFacts, record_event

log = logging.getLogger(__name__)


class EndpointNotices:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conn: Redis | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, endpoint_id: str, notice: str) -> None:
        """Announce ``notice`` (``disabled`` or ``recovered``) for the endpoint."""
        task = asyncio.create_task(asyncio.to_thread(self._announce, endpoint_id, notice))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        if self._conn is not None:
            self._conn.close()

    def _announce(self, endpoint_id: str, notice: str) -> None:
        try:
            conn = self._connection()
            state = health.read(conn, [endpoint_id])[endpoint_id]
            found = directory.current(conn, self.settings).get(endpoint_id)
            url = found.spec.public_url() if found is not None else ""
            reason = state.disabled_reason if notice == "disabled" else None
            if notice == "disabled":
                log.warning(
                    "webhook endpoint %s (%s) disabled: %s; its new events are held until it "
                    "is enabled again (PATCH /webhooks/endpoints/%s)",
                    endpoint_id,
                    url,
                    reason,
                    endpoint_id,
                )
            else:
                log.info("webhook endpoint %s (%s) delivers again", endpoint_id, url)
            conn.hincrby(store.STATS, f"endpoint_{notice}", 1)
            payload = health.notice_payload(notice, endpoint_id, url, state, reason)
            notify = self.settings.webhooks.notify_endpoint
            record_event(
                conn,
                event_key=payload["id"],
                req=None,
                facts=EventFacts(event_type=payload["event_type"]),
                build=lambda _fmt, _output: payload,
                snapshot=store.JobSnapshot(
                    id=payload["id"],
                    status=notice,
                    created_at=payload["timestamp"],
                    started_at=None,
                    ended_at=None,
                    meta={"endpoint_id": endpoint_id},
                ),
                always=(notify,) if notify else (),
                settings=self.settings,
            )
        except Exception:
            log.exception(
                "the %s notice of webhook endpoint %s was not recorded", notice, endpoint_id
            )

    def _connection(self) -> Redis:
        if self._conn is None:
            self._conn = connect(self.settings.redis_url)
        return self._conn
