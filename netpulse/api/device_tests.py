"""`POST /device/test` runs on threads of its own, a few at a time.

A connection test blocks a thread for as long as the device takes to answer (or not: a port
that never answers holds it for the driver's whole timeout). On the controller's shared thread
pool, a few dozen such tests made every other route wait, `/health` included. Here they get
``server.max_device_tests`` threads of their own; a test beyond that is refused at once (503,
``Retry-After``) instead of queueing, and a test that takes longer than
``server.device_test_timeout`` is answered as timed out (its thread ends with the driver's own
timeout; its slot stays taken until then, so the bound holds).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class TestsBusy(RuntimeError):
    """Every slot for connection tests is taken."""


class DeviceTests:
    def __init__(self, slots: int, timeout: float) -> None:
        self.slots = slots
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="device-test")
        #: A slot is held from the request until its thread is done (not until the reply).
        self._slots = threading.BoundedSemaphore(slots)

    async def run(self, test: Callable[[], T]) -> T:
        """``test()`` on a test thread; :class:`TestsBusy` when none is free, ``TimeoutError``
        after ``timeout`` seconds (the thread then finishes on its own)."""
        if not self._slots.acquire(blocking=False):
            raise TestsBusy(
                f"{self.slots} connection tests are running already "
                "(server.max_device_tests); try again in a moment"
            )

        def guarded() -> T:
            try:
                return test()
            finally:
                self._slots.release()

        future = asyncio.get_running_loop().run_in_executor(self._executor, guarded)
        return await asyncio.wait_for(asyncio.shield(future), self.timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
