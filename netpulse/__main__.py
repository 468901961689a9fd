# A child of `netpulse up` dies with it (NETPULSE_PARENT_PID): asked before anything else is
# imported, so the window in which the supervisor's death would go unnoticed stays short.
from netpulse.runtime.lifeline import die_with_parent_from_env

die_with_parent_from_env()

from netpulse.cli.main import app  # noqa: E402

app()
