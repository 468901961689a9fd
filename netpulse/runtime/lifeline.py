"""Die with the parent process (Linux ``PR_SET_PDEATHSIG``).

NetPulse's processes form a tree (``netpulse up`` -> FIFO pool -> workers -> work-horses); a
process whose parent was killed must not run on unwatched.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        log.debug("die_with_parent: not on Linux, nothing done")
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        return
    if os.getppid() != parent or parent == 1:
        os.kill(os.getpid(), sig)  # the parent died before the request took effect
