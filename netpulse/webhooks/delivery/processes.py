"""Run one or several delivery processes (``netpulse worker webhooks --processes N``).

One delivery process is one asyncio event loop, so one core at full load (about 2,000
events per second here, bench/RESULTS.md). More processes share the work through Redis
exactly as processes on several machines do: each claims due deliveries atomically, a
delivery is attempted by one of them at a time. The extra ones are forked before any event
loop exists, die with this process (``runtime.lifeline``), and are stopped with it.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from multiprocessing.process import BaseProcess

from netpulse.config import Settings
from netpulse.runtime.eventloop import run_event_loop
from netpulse.runtime.lifeline import die_with_parent
from netpulse.webhooks.delivery.service import serve

log = logging.getLogger(__name__)


def _run_one(settings: Settings) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    run_event_loop(main())


def _child(settings: Settings, parent: int) -> None:
    die_with_parent(signal.SIGTERM, expected_parent=parent)
    _run_one(settings)


def run_delivery_processes(settings: Settings, count: int) -> int:
    """Run ``count`` delivery processes (this one and ``count - 1`` forked ones) until a
    signal; the exit code."""
    if count <= 1:
        _run_one(settings)
        return 0
    context = multiprocessing.get_context("fork")
    children: list[BaseProcess] = [
        context.Process(
            target=_child, args=(settings, os.getpid()), name=f"delivery-{n}", daemon=False
        )
        for n in range(2, count + 1)
    ]
    for child in children:
        child.start()
    log.info("started %d more delivery processes: %s", len(children), [c.pid for c in children])
    try:
        _run_one(settings)
    finally:
        for child in children:
            if child.is_alive() and child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)
        for child in children:
            child.join(30)
            if child.is_alive():
                log.error("delivery process %s did not stop in 30 s; killing it", child.pid)
                child.kill()
                child.join(5)
    return 0
