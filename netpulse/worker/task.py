"""The function every device job runs (`netpulse.worker.task.run_device_job`).

It is what RQ imports and calls, with the original request as ``req``
(``job.kwargs["req"]``, where the webhook callbacks find it too). On a worker node the
session comes from the node's pool and stays open after the job; elsewhere the job connects
and disconnects.
"""

from __future__ import annotations

import logging
from typing import Any

from rq import get_current_job

from netpulse.models.request import ExecutionRequest
from netpulse.plugins.drivers import registry as drivers

log = logging.getLogger(__name__)


def run_device_job(req: ExecutionRequest) -> list[dict[str, Any]]:
    """Run the request's commands or config on its device; return one result each.

    Raises the driver's ``DriverError`` when the device cannot be reached or refuses the
    login, so RQ marks the job failed; a command the device rejects is a result with
    ``exit_status != 0`` instead.
    """
    from netpulse.worker import node

    pool = node.CURRENT_POOL
    if pool is not None:
        job = get_current_job()
        with pool.lease(req, job.id if job else None) as driver:
            results = driver.execute(req)
        return [r.model_dump() for r in results]
    driver = drivers.get(req.driver)(req.connection_args, req.driver_args)
    driver.connect()
    try:
        results = driver.execute(req)
    finally:
        driver.disconnect()
    return [r.model_dump() for r in results]
