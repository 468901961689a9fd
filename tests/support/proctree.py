"""Processes as the kernel sees them (/proc): who descends from whom, who is still alive.

Supervision tests kill processes by PID and then check that nothing was left behind, so they
must find every process of a tree, including those in other process groups.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, pgrp, ...)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie has ended; only its entry is left)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and parent_of(int(entry)) == pid:
            found.append(int(entry))
    return sorted(found)


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (children, grandchildren ...), any process group."""
    by_parent: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = parent_of(int(entry))
            if ppid is not None:
                by_parent.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return {p for p in found if alive(p)}


def kill_all(pids: set[int], markers: tuple[str, ...] = ("netpulse", "redis-server")) -> None:
    """SIGKILL those of ``pids`` still alive whose command line contains one of ``markers``
    (a pid reused by an unrelated process meanwhile is spared)."""
    for pid in pids:
        if alive(pid) and any(m in cmdline(pid) for m in markers):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
