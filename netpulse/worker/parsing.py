"""`parsing` in a job: parse each command's output into its result's ``parsed``.

A result the device rejected is not parsed; an output the template cannot parse keeps its
``stdout`` and says why in ``metadata.parse_error`` (the job still finishes).
"""

from __future__ import annotations

from netpulse.config import get_settings
from netpulse.models.job import DriverExecutionResult
from netpulse.models.request import ExecutionRequest
from netpulse.templates import service
from netpulse.templates.contract import TemplateError
from netpulse.templates.sandbox import TemplateSandbox, memory_cap


def parse_results(
    req: ExecutionRequest,
    results: list[DriverExecutionResult],
    sandbox: TemplateSandbox | None = None,
) -> None:
    """Parse in ``sandbox`` when given (a worker node), else in this process."""
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
        args = (name, template, [result.stdout], options, settings)
        try:
            if sandbox is not None:
                [outcome] = sandbox.run("parse_each", *args)
            else:  # a FIFO work-horse: RQ kills it at the job's timeout; memory capped here
                with memory_cap(settings.templates.memory_limit_mb * 1024 * 1024):
                    [outcome] = service.parse_each(*args)
        except TemplateError as exc:  # stopped for its time or memory
            outcome = service.ParseOutcome(error=str(exc))
        except MemoryError:
            outcome = service.ParseOutcome(
                error="parsing needed more memory than templates.memory_limit_mb allows"
            )
        if outcome.ok:
            result.parsed = outcome.parsed
        else:
            result.metadata["parse_error"] = outcome.error
