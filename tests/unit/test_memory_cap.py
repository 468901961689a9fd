"""`memory_cap`: a FIFO work-horse's parse may not take more memory than its limit, and the
process has its memory back afterwards. Run in a child process (the cap is process-wide)."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
from netpulse.templates.sandbox import memory_cap
try:
    with memory_cap(32 * 1024 * 1024):
        bytearray(256 * 1024 * 1024)
    print("not capped")
except MemoryError:
    print("capped")
bytearray(256 * 1024 * 1024)
print("lifted")
"""


def test_the_cap_holds_inside_the_block_and_is_lifted_after() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.split() == ["capped", "lifted"], done.stdout + done.stderr
