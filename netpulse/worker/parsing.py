"""`parsing` in a job: parse each command's output into its result's ``parsed``.

A result the device rejected is not parsed; an output the template cannot parse keeps its
``stdout`` and says why in ``metadata.parse_error`` (the job still finishes).
"""

from __future__ import annotations

from netpulse.config import get_settings
from netpulse.models.job import DriverExecutionResult
from netpulse.models.request import ExecutionRequest
from netpulse.templates import service


def parse_results(req: ExecutionRequest, results: list[DriverExecutionResult]) -> None:
    spec = dict(req.parsing or {})
    name = spec.pop("name", None)
    template = spec.pop("template", None)
    settings = get_settings()
    for result in results:
        if result.exit_status != 0 or result.parsed is not None:
            continue
        options = {
            "platform": req.connection_args.device_type,
            "command": result.command,
            **spec,
        }
        [outcome] = service.parse_each(name, template, [result.stdout], options, settings)
        if outcome.ok:
            result.parsed = outcome.parsed
        else:
            result.metadata["parse_error"] = outcome.error
