"""Fairness between destinations, with the delivery service in this process on a private
Redis: a slow receiver holds only its own slots, a failing one is backed off, and neither
delays deliveries to a healthy receiver. Nothing is dropped."""

from __future__ import annotations

import time
import uuid

from redis import Redis

from netpulse.config import Settings, load_settings
from netpulse.webhooks import store
from tests.support.delivery import delivery_service, record_success, request_with_webhook
from tests.support.processes import wait_until
from tests.support.receiver import Receiver


def _record(conn: Redis, url: str) -> str:
    # One retry, a minute later: no second attempt happens during a test.
    req = request_with_webhook({"url": url, "max_retries": 1, "retry_intervals": [60]})
    delivery_id = record_success(conn, str(uuid.uuid4()), req)
    assert delivery_id is not None
    return delivery_id


def _settings(url: str, **webhooks: object) -> Settings:
    return load_settings(redis={"url": url}, webhooks={"allow_cidrs": ["127.0.0.0/8"], **webhooks})


def test_a_slow_receiver_holds_only_its_own_slots(private_redis: str) -> None:
    conn = Redis.from_url(private_redis)
    settings = _settings(private_redis, max_in_flight=8, max_in_flight_per_origin=2)
    with Receiver() as slow, Receiver() as fast:
        slow.behave("/slow", delay=1.0)
        slow_ids = [_record(conn, slow.url("/slow")) for _ in range(8)]
        for _ in range(2):
            _record(conn, fast.url("/fast"))
        with delivery_service(settings):
            started = time.time()
            healthy = fast.wait_for("/fast", count=2, timeout=5)
            # Both healthy events went out while the slow receiver held its first requests.
            assert max(r.at for r in healthy) - started < 0.9
            assert len(slow.on("/slow")) <= 2  # its in-flight cap
            # Only the slow origin's claim budget (max_in_flight // 4 here) is leased; the
            # rest wait in Redis, untouched.
            leased = [i for i in slow_ids if conn.zscore(store.due_key_of(i), i) > time.time() + 60]
            assert len(leased) <= 2
            got = slow.wait_for("/slow", count=8, timeout=20)
            assert len({r.headers["webhook-id"] for r in got}) == 8
            stamps = sorted(r.at for r in got)
            # Never more than 2 at once: each group of 2 arrives about 1 s after the last.
            assert all(b - a > 0.8 for a, b in zip(stamps, stamps[2:], strict=False))


def test_a_failing_receiver_is_backed_off_and_its_deliveries_stay_pending(
    private_redis: str,
) -> None:
    conn = Redis.from_url(private_redis)
    settings = _settings(
        private_redis,
        max_in_flight_per_origin=1,
        origin_failure_threshold=2,
        origin_backoff_seconds=60,
    )
    with Receiver() as failing, Receiver() as healthy:
        failing.behave("/down", statuses=[500])
        waiting = [_record(conn, failing.url("/down")) for _ in range(6)]
        with delivery_service(settings):
            failing.wait_for("/down", count=2, timeout=10)
            _record(conn, healthy.url("/up"))
            healthy.wait_for("/up", timeout=2)

            # Two failures in a row backed the origin off: no third attempt, nothing dropped.
            def attempts() -> list[bytes | None]:
                return [conn.hget(store.delivery_key(i), "attempts") for i in waiting]

            wait_until(lambda: attempts().count(b"1") == 2, 5, "two attempts logged")
            assert len(failing.on("/down")) == 2
            assert sorted(attempts()) == [b"0"] * 4 + [b"1"] * 2
            states = [conn.hget(store.delivery_key(i), "state") for i in waiting]
            assert states == [b"pending"] * 6


def test_slow_receivers_with_backlogs_leave_room_for_a_healthy_one(private_redis: str) -> None:
    conn = Redis.from_url(private_redis)
    settings = _settings(private_redis, max_in_flight=8, max_in_flight_per_origin=1)
    slow = [Receiver() for _ in range(3)]
    with Receiver() as fast, slow[0], slow[1], slow[2]:
        for receiver in slow:
            receiver.behave("/slow", delay=3.0)
            for _ in range(6):
                _record(conn, receiver.url("/slow"))
        with delivery_service(settings):
            for receiver in slow:
                receiver.wait_for("/slow", timeout=5)
            sent = time.time()
            _record(conn, fast.url("/fast"))
            [got] = fast.wait_for("/fast", timeout=5)
            # Three slow origins hold deliveries, yet the healthy one goes out at once, not
            # after the slow backlogs.
            assert got.at - sent < 1.0


def test_a_delivery_waiting_longer_than_its_lease_is_sent_once(private_redis: str) -> None:
    conn = Redis.from_url(private_redis)
    settings = _settings(private_redis, max_in_flight_per_origin=1, lease_seconds=5)
    with Receiver() as slow:
        slow.behave("/slow", delay=2.0)
        ids = [_record(conn, slow.url("/slow")) for _ in range(4)]
        with delivery_service(settings):
            # One at a time, 2 s each: the last one waits about 6 s for its slot, longer than
            # its lease; the lease is renewed meanwhile, so it is not claimed a second time.
            got = slow.wait_for("/slow", count=4, timeout=20)
            wait_until(
                lambda: all(conn.hget(store.delivery_key(i), "state") == b"succeeded" for i in ids),
                5,
                "all four deliveries succeeded",
            )
        ids_sent = [r.headers["webhook-id"] for r in slow.on("/slow")]
        assert len(got) == 4 and len(ids_sent) == 4 and len(set(ids_sent)) == 4
        assert all(conn.llen(store.attempts_key(i)) == 1 for i in ids)
