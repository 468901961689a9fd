"""Whether a process of this host is gone, by pid (for heartbeats of processes on this host).

A node or FIFO pool whose heartbeat is still fresh may have died a moment ago; when it ran
on this host its pid tells at once, instead of waiting for the heartbeat to expire.
"""

from __future__ import annotations

import os


def process_gone(pid: int) -> bool:
    """True when no process has ``pid`` (a pid we may not signal belongs to a live process)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
