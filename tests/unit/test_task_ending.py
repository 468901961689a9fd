"""Background tasks end at shutdown even when a cancellation is swallowed (as redis-py's
asyncio client sometimes does mid-command): the stop event ends them, and whoever waits for
them waits a bounded time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pytest

from netpulse.runtime.tasks import end_tasks
from netpulse.webhooks.delivery.heartbeat import ServiceHeartbeat


async def _swallowing_call(calls: list[float]) -> None:
    """A Redis call that completes although the task was cancelled meanwhile."""
    calls.append(time.monotonic())
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(0.05)


class _SwallowingRedis:
    """Stands in for the client: its scripts swallow a cancellation, as seen with redis-py."""

    def __init__(self) -> None:
        self.beats: list[float] = []
        self.removed: list[str] = []

    def register_script(self, _source: str) -> Any:
        async def script(keys: list[str], args: list[Any]) -> int:
            await _swallowing_call(self.beats)
            return 1

        return script

    async def zrem(self, _key: str, member: str) -> int:
        self.removed.append(member)
        return 1


def test_a_heartbeat_whose_cancellation_was_swallowed_ends_on_the_stop_event() -> None:
    async def scenario() -> None:
        redis = _SwallowingRedis()
        heartbeat = ServiceHeartbeat(redis, instance="hb", interval=0.01)  # type: ignore[arg-type]
        stop = asyncio.Event()
        task = asyncio.create_task(heartbeat.run(stop))
        while not redis.beats:
            await asyncio.sleep(0.001)
        task.cancel()  # lands in the beat, which swallows it
        await asyncio.sleep(0.1)
        # Cancellation alone did not end it: this is the behaviour being guarded against.
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, 2)
        assert redis.removed == ["hb"]

    asyncio.run(scenario())


def test_end_tasks_ends_a_task_that_swallowed_its_cancellation_through_its_stop_event() -> None:
    async def scenario() -> None:
        stop = asyncio.Event()
        calls: list[float] = []

        async def loop() -> None:
            while not stop.is_set():
                await _swallowing_call(calls)

        task = asyncio.create_task(loop())
        while not calls:
            await asyncio.sleep(0.001)
        stop.set()
        await end_tasks([task], "test", timeout=2)
        assert task.done()

    asyncio.run(scenario())


def test_end_tasks_gives_up_on_a_task_that_never_ends_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="netpulse.runtime.tasks")

    async def scenario() -> None:
        calls: list[float] = []
        released = False

        async def stubborn() -> None:
            while not released:  # no stop event: only the test's release ends it
                await _swallowing_call(calls)

        task = asyncio.create_task(stubborn(), name="stubborn")
        while not calls:
            await asyncio.sleep(0.001)
        await end_tasks([task], "test", timeout=0.3)
        assert not task.done()
        released = True  # leave nothing running when the event loop closes
        await asyncio.wait_for(task, 2)

    asyncio.run(scenario())
    assert "background task stubborn did not end within 0.3 s" in caplog.text


def test_end_tasks_reports_a_task_that_failed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="netpulse.runtime.tasks")

    async def scenario() -> None:
        async def broken() -> None:
            raise RuntimeError("boom")

        task = asyncio.create_task(broken(), name="broken")
        await asyncio.sleep(0)
        await end_tasks([task], "test")

    asyncio.run(scenario())
    assert "background task broken failed before it ended" in caplog.text
    assert "boom" in caplog.text
