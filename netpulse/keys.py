"""Names of NetPulse's own Redis keys and channels (RQ's keys are RQ's business)."""

from __future__ import annotations

PREFIX = "netpulse"

#: Pub/sub channel carrying the id of every job that reached a final state.
JOB_DONE_CHANNEL = f"{PREFIX}:jobs:done"


def job_done_channel() -> str:
    return JOB_DONE_CHANNEL
