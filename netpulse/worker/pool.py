"""Run the FIFO worker pool: N forking RQ workers (RQ's `WorkerPool`) on the FIFO queue."""

from __future__ import annotations

import logging

from redis import Redis
from rq.worker_pool import WorkerPool

from netpulse.config import Settings
from netpulse.worker.rq_worker import NetPulseWorker


def preload() -> None:
    """Import what every job needs once, so each forked work-horse starts warm: the driver
    libraries, the callbacks (outbox, events) and the settings."""
    import netpulse.worker.callbacks
    import netpulse.worker.task  # noqa: F401
    from netpulse.config import get_settings
    from netpulse.plugins.drivers import registry
    from netpulse.plugins.webhooks import registry as webhook_registry

    registry.names()
    webhook_registry.names()
    get_settings()


def run_pool(settings: Settings, size: int | None = None, burst: bool = False) -> None:
    preload()
    conn = Redis.from_url(settings.redis_url)
    pool = WorkerPool(
        [settings.worker.fifo_queue],
        connection=conn,
        num_workers=size or settings.worker.pool_size,
        worker_class=NetPulseWorker,
    )
    logging.getLogger(__name__).info(
        "starting %d FIFO workers on %s", pool.num_workers, settings.worker.fifo_queue
    )
    pool.start(burst=burst, logging_level=settings.log_level)
