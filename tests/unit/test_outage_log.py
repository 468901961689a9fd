"""One line when Redis goes away and one when it is back, also when it flaps on the way."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from netpulse.runtime.outage import OutageLog

log = logging.getLogger("test.outage")


def lines(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


def test_retries_of_one_outage_say_it_once(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog(log, "part")
    with caplog.at_level(logging.INFO, logger="test.outage"):
        for _ in range(50):
            outage.failed(RedisConnectionError("refused"))
        outage.recovered()
        outage.recovered()
    assert lines(caplog, "Redis is unreachable") == 1
    assert lines(caplog, "Redis answers again") == 1


def test_a_failure_right_after_a_recovery_is_the_same_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = OutageLog(log, "part")
    with caplog.at_level(logging.INFO, logger="test.outage"):
        outage.failed(RedisConnectionError("closed by server"))  # Redis shutting down
        outage.recovered()  # one command got through
        outage.failed(RedisConnectionError("refused"))  # and the next did not
        outage.recovered()
    assert lines(caplog, "Redis is unreachable") == 1
    assert outage.down is False


def test_a_failure_long_after_a_recovery_is_a_new_outage(caplog: pytest.LogCaptureFixture):
    outage = OutageLog(log, "part")
    with caplog.at_level(logging.INFO, logger="test.outage"):
        outage.failed(RedisConnectionError("refused"))
        outage.recovered()
        outage._recovered_at -= OutageLog.SETTLE_SECONDS + 1  # as if it answered for a while
        outage.failed(RedisConnectionError("refused"))
    assert lines(caplog, "Redis is unreachable") == 2
