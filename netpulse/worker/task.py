"""The function every device job runs (`netpulse.worker.task.run_device_job`).

It is what RQ imports and calls in the work-horse, with the original request as
``req`` (``job.kwargs["req"]``, where the webhook callbacks find it too).
"""

from __future__ import annotations

import logging
from typing import Any

from netpulse.models.request import ExecutionRequest
from netpulse.plugins.drivers import registry as drivers

log = logging.getLogger(__name__)


def run_device_job(req: ExecutionRequest) -> list[dict[str, Any]]:
    """Connect, run the request's commands or config, disconnect; return one result each.

    Raises the driver's ``DriverError`` when the device cannot be reached or refuses the
    login, so RQ marks the job failed; a command the device rejects is a result with
    ``exit_status != 0`` instead.
    """
    driver = drivers.get(req.driver)(req.connection_args, req.driver_args)
    driver.connect()
    try:
        results = driver.execute(req)
    finally:
        driver.disconnect()
    return [r.model_dump() for r in results]
