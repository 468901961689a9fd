"""The endpoint health and rate scripts against a real Redis: the time rule (every attempt
failed for N seconds), the failed-deliveries rule, recovery, and the send slots."""

from __future__ import annotations

import itertools
import uuid

from redis import Redis

from netpulse.webhooks import store
from netpulse.webhooks.endpoints import health

FIVE_DAYS = 5 * 86400


def _outcome(redis: Redis, endpoint: str, outcome: health.Outcome, at: float) -> str:
    reply = health.scripts(redis).outcome(endpoint, outcome, at, FIVE_DAYS, 50)
    return reply.decode() if isinstance(reply, bytes) else reply


def test_every_attempt_failing_for_five_days_disables_the_endpoint(redis: Redis) -> None:
    endpoint = f"ep_{uuid.uuid4().hex[:12]}"
    start = 1_800_000_000.0
    assert _outcome(redis, endpoint, health.Outcome.FAILURE, start) == ""
    assert _outcome(redis, endpoint, health.Outcome.FAILURE, start + FIVE_DAYS - 1) == ""
    assert not redis.sismember(store.DISABLED, endpoint)
    assert _outcome(redis, endpoint, health.Outcome.FAILURE, start + FIVE_DAYS) == "disabled"
    state = health.read(redis, [endpoint])[endpoint]
    assert not state.enabled
    assert state.disabled_reason == f"every attempt failed for {FIVE_DAYS} s"
    # Said once: later failures of a disabled endpoint announce nothing.
    assert _outcome(redis, endpoint, health.Outcome.FAILURE, start + FIVE_DAYS + 9) == ""
    health.forget(redis, endpoint)


def test_a_success_in_between_starts_the_stretch_again(redis: Redis) -> None:
    endpoint = f"ep_{uuid.uuid4().hex[:12]}"
    start = 1_800_000_000.0
    _outcome(redis, endpoint, health.Outcome.FAILURE, start)
    assert _outcome(redis, endpoint, health.Outcome.SUCCESS, start + 10) == ""  # no failed one
    assert _outcome(redis, endpoint, health.Outcome.FAILURE, start + FIVE_DAYS) == ""
    assert health.read(redis, [endpoint])[endpoint].enabled
    health.forget(redis, endpoint)


def test_failed_deliveries_in_a_row_disable_and_a_success_recovers(redis: Redis) -> None:
    endpoint = f"ep_{uuid.uuid4().hex[:12]}"
    now = 1_800_000_000.0
    for n in range(49):
        assert _outcome(redis, endpoint, health.Outcome.FAILED_DELIVERY, now + n) == ""
    assert _outcome(redis, endpoint, health.Outcome.FAILED_DELIVERY, now + 49) == "disabled"
    assert health.read(redis, [endpoint])[endpoint].failed_deliveries == 50
    health.enable(redis, endpoint, replay_held=True, webhook_json="{}", url="http://x/")
    state = health.read(redis, [endpoint])[endpoint]
    assert state.enabled and state.failed_deliveries == 0 and state.failing_since is None
    assert _outcome(redis, endpoint, health.Outcome.SUCCESS, now + 60) == "recovered"
    assert _outcome(redis, endpoint, health.Outcome.SUCCESS, now + 61) == ""  # once
    health.forget(redis, endpoint)


def test_send_slots_are_spaced_by_the_rate_whoever_asks(redis: Redis, redis_url: str) -> None:
    endpoint = f"ep_{uuid.uuid4().hex[:12]}"
    # Two clients with connections of their own, as two delivery processes have.
    first, second = redis, Redis.from_url(redis_url)
    waits = [
        float(health.scripts(client).reserve(endpoint, 5.0))
        for client in (first, second, first, second)
    ]
    assert waits[0] == 0.0
    # Each later slot is 0.2 s after the one before (less the time the calls took).
    for earlier, later in itertools.pairwise(waits):
        assert 0.15 < later - earlier <= 0.2 + 1e-6
    second.close()
    redis.delete(store.rate_key(endpoint))
