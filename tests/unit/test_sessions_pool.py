"""The warm-session pool, with an in-memory driver: reuse by identity, a dead session
replaced, a session that fails during a job dropped (and said to be lost when it was
reused), idle sessions closed, stops before the session exists honoured."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from netpulse.drivers import registry as drivers
from netpulse.drivers.base import BaseDriver, DeviceConnectionError
from netpulse.models.job import DriverExecutionResult, JobErrorType
from netpulse.models.request import ExecutionRequest
from netpulse.sessions import pool as pool_module
from netpulse.sessions.pool import SessionLostError, SessionPool, StoppedBeforeReadError


class MemoryDriver(BaseDriver):
    driver_name = "memory"
    default_port = 2222
    opened: ClassVar[list[MemoryDriver]] = []

    def connect(self) -> None:
        self.alive = True
        self.closed = False
        self.kept_alive = 0
        MemoryDriver.opened.append(self)

    def disconnect(self) -> None:
        self.alive = False
        self.closed = True

    def is_alive(self) -> bool:
        return self.alive

    def keepalive(self) -> None:
        self.kept_alive += 1

    def send(self, commands: list[str], req: ExecutionRequest) -> list[DriverExecutionResult]:
        return [DriverExecutionResult(command=c, stdout=c) for c in commands]


@pytest.fixture(autouse=True)
def memory_driver(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(drivers.plugins, "memory", MemoryDriver)
    MemoryDriver.opened = []
    yield


def job(password: str = "pw", host: str = "10.0.0.1") -> ExecutionRequest:
    return ExecutionRequest.model_validate(
        {
            "driver": "memory",
            "connection_args": {"host": host, "username": "u", "password": password},
            "command": "show clock",
        }
    )


def test_the_same_identity_reuses_one_session() -> None:
    pool = SessionPool()
    with pool.lease(job()) as first:
        assert first.session_reused is False
    with pool.lease(job()) as second:
        assert second is first and second.session_reused is True
    assert pool.stats() == {"sessions": 1, "opened": 1, "reused": 1}
    assert pool.hosts() == ["10.0.0.1:2222"]  # named by the driver's device key


def test_other_credentials_get_their_own_session() -> None:
    pool = SessionPool()
    with pool.lease(job("a")) as one, pool.lease(job("b")) as other:
        assert one is not other
    assert pool.stats()["sessions"] == 2


def test_a_dead_session_is_replaced_before_the_job_uses_it() -> None:
    pool = SessionPool()
    with pool.lease(job()) as first:
        pass
    first.alive = False
    with pool.lease(job()) as second:
        assert second is not first and second.session_reused is False
    assert first.closed


def test_a_reused_session_failing_during_the_job_is_lost_and_dropped() -> None:
    pool = SessionPool()
    with pool.lease(job()):
        pass
    with pytest.raises(SessionLostError) as lost, pool.lease(job()):
        raise DeviceConnectionError("socket closed")
    assert lost.value.error_type == JobErrorType.SESSION_LOST
    assert "may have reached the device" in str(lost.value)
    assert pool.stats()["sessions"] == 0


def test_a_new_session_failing_keeps_its_own_error() -> None:
    pool = SessionPool()
    with pytest.raises(DeviceConnectionError) as failed, pool.lease(job()):
        raise DeviceConnectionError("refused")
    assert not isinstance(failed.value, SessionLostError)
    assert pool.stats()["sessions"] == 0


def test_any_other_error_discards_the_session() -> None:
    pool = SessionPool()
    with pytest.raises(TimeoutError), pool.lease(job()) as driver:
        raise TimeoutError
    assert driver.closed and pool.stats()["sessions"] == 0


def test_idle_sessions_are_closed_and_live_ones_kept_alive(monkeypatch: Any) -> None:
    pool = SessionPool(idle_timeout=60)
    clock = [1000.0]
    monkeypatch.setattr(pool_module.time, "monotonic", lambda: clock[0])
    with pool.lease(job("idle")) as idle:
        pass
    clock[0] += 50
    with pool.lease(job("busy")) as busy:
        pass
    clock[0] += 20  # idle unused for 70 s, busy for 20 s
    pool.probe_once()
    assert idle.closed and not busy.closed
    assert busy.kept_alive == 1
    assert pool.hosts() == ["10.0.0.1:2222"] and pool.stats()["sessions"] == 1


def test_a_session_in_use_is_left_alone_by_the_probe() -> None:
    pool = SessionPool(idle_timeout=0)
    with pool.lease(job()) as driver:
        pool.probe_once()
        assert not driver.closed
    assert pool.stats()["sessions"] == 1


def test_a_stop_before_the_session_exists_fails_the_lease_before_any_command() -> None:
    pool = SessionPool()
    assert pool.interrupt("job-1") is False  # no session yet: remembered
    with pytest.raises(StoppedBeforeReadError), pool.lease(job(), "job-1"):
        pytest.fail("the job must not get its session")
    pool.forget_stop("job-1")
    with pool.lease(job(), "job-1"):
        pass


def test_one_job_at_a_time_per_session() -> None:
    pool = SessionPool()
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        with pool.lease(job()):
            order.append("first in")
            inside.set()
            release.wait(5)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(5)
    blocked = threading.Event()

    def take() -> None:
        with pool.lease(job()):
            order.append("second in")
        blocked.set()

    second = threading.Thread(target=take)
    second.start()
    # The second job waits on the session's lock while the first holds it.
    assert not blocked.wait(0.2)
    release.set()
    thread.join(5)
    second.join(5)
    assert order == ["first in", "first out", "second in"]
