"""The delivery store's guarantees against a real (private) Redis: deliveries queued by the
earlier single due set are still delivered, a stale outcome cannot undo a delivered event,
and one outcome that cannot be stored does not stop the others."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from redis import Redis
from redis import asyncio as aioredis

from netpulse.config import load_settings
from netpulse.webhooks import store
from netpulse.webhooks.callers import AttemptOutcome
from netpulse.webhooks.delivery.journal import AttemptRecord, OutcomeJournal
from tests.support.delivery import delivery_service, record_success, request_with_webhook
from tests.support.receiver import Receiver


def _record_success_now(conn: Redis, url: str) -> str:
    delivery_id = record_success(conn, str(uuid.uuid4()), request_with_webhook({"url": url}))
    assert delivery_id is not None
    return delivery_id


def test_deliveries_in_the_earlier_single_due_set_are_still_delivered(
    private_redis: str, receiver: Receiver
) -> None:
    conn = Redis.from_url(private_redis)
    delivery_id = _record_success_now(conn, receiver.url("/legacy"))
    # Make it look as an earlier version left it: in the one due set, no per-origin filing.
    tag = store.tag_of(delivery_id)
    assert tag is not None
    conn.delete(store.due_key(tag), store.DUE_ORIGINS)
    conn.zadd(store.LEGACY_DUE, {delivery_id: time.time()})
    settings = load_settings(redis={"url": private_redis})
    with delivery_service(settings):
        [got] = receiver.wait_for("/legacy", timeout=10)
    assert got.headers["webhook-id"].startswith("msg_")
    assert conn.hget(store.delivery_key(delivery_id), "state") == b"succeeded"
    assert not conn.exists(store.LEGACY_DUE)


def _attempt_record(
    delivery_id: str, attempts_before: int, state: str, verdict: str = "retry"
) -> AttemptRecord:
    tag = store.filing_tag(delivery_id)
    pending = state == "pending"
    return AttemptRecord(
        delivery_id=delivery_id,
        tag=tag,
        attempts_before=attempts_before,
        entry=store.AttemptLogEntry(
            attempt=attempts_before + 1,
            at=time.time(),
            url="http://127.0.0.1/",
            status_code=None,
            latency_ms=10.0,
            verdict=verdict,
            error=None,
            remote_ip=None,
            response_body=None,
            next_attempt_at=None,
        ),
        change=store.AttemptChange(
            state=store.DeliveryState(state),
            attempts=attempts_before + 1,
            updated_at=time.time(),
            last_status_code=None,
            last_error="",
            next_at=time.time() + 60 if pending else None,
        ),
        verdict=verdict,
        latency=0.01,
    )


def _flush(url: str, records: list[AttemptRecord]) -> None:
    async def main() -> None:
        redis = aioredis.from_url(url)
        try:
            journal = OutcomeJournal(redis, retention=3600)
            for record in records:
                journal.add(record)
            assert await journal.flush()
            assert journal.backlog == 0
        finally:
            await redis.aclose()

    asyncio.run(main())


def test_a_stale_outcome_is_logged_but_cannot_undo_a_delivered_event(
    private_redis: str, receiver: Receiver
) -> None:
    conn = Redis.from_url(private_redis)
    delivery_id = _record_success_now(conn, receiver.url())
    success = _attempt_record(delivery_id, 0, state="succeeded", verdict="success")
    # A second attempt of the same delivery that also started at attempt 0 and failed later.
    stale = _attempt_record(delivery_id, 0, state="pending", verdict="retry")
    _flush(private_redis, [success, stale])
    assert conn.hget(store.delivery_key(delivery_id), "state") == b"succeeded"
    assert conn.zscore(store.due_key_of(delivery_id), delivery_id) is None
    assert conn.llen(store.attempts_key(delivery_id)) == 2  # both attempts are in the log


def test_an_outcome_of_odd_types_is_stored_and_does_not_block_the_next(
    private_redis: str, receiver: Receiver
) -> None:
    conn = Redis.from_url(private_redis)
    odd_id = _record_success_now(conn, receiver.url())
    plain_id = _record_success_now(conn, receiver.url())
    # What a careless custom caller might return: bytes body, no reason, a bool, an object.
    odd: Any = {"reason": None, "response_body": b"\xffok", "status_code": "200"}
    checked = AttemptOutcome("success", **odd).checked()
    assert checked.response_body == "\ufffdok"
    assert checked.reason == "" and checked.status_code == 200
    assert AttemptOutcome("maybe").checked().verdict == "retry"  # type: ignore[arg-type]
    weird = _attempt_record(odd_id, 0, state="succeeded", verdict="success")
    weird.entry.response_body = object()  # type: ignore[assignment]
    weird.entry.status_code = "200"  # type: ignore[assignment]
    _flush(private_redis, [weird, _attempt_record(plain_id, 0, state="succeeded")])
    assert conn.hget(store.delivery_key(odd_id), "state") == b"succeeded"
    assert conn.hget(store.delivery_key(plain_id), "state") == b"succeeded"
