"""Die with the parent process (Linux ``PR_SET_PDEATHSIG``).

NetPulse's processes form a tree: ``netpulse up`` -> controller, FIFO pool, node, delivery
service (and the private ``redis-server``); FIFO pool -> workers -> work-horses. A process
whose parent was killed must not run on unwatched: nobody would stop it, restart it or read its
exit status, and a second ``netpulse up`` would find its ports, node name and Redis taken. Only
the kernel can tell a process that its parent died even when the parent had no chance to say so
(SIGKILL, out of memory), hence ``prctl(PR_SET_PDEATHSIG)``.

What the kernel's rule means for callers:

- The request is cleared in a forked child: every process asks for itself (after ``fork``),
  or, for a program that is ``exec``'d, before ``exec`` (the request survives ``execve``
  unless the program is set-user-ID), see :func:`preexec_die_with_parent`.
- The signal is sent when the *thread* that created the child ends, not the whole process:
  a parent must start such children from a thread that lives as long as it does (its main
  thread).
- There is a window between the child's start and its request: a parent that dies there is
  never signalled for. After the request the child compares ``getppid()`` with the parent it
  expects; a different one means it was already adopted (by init or a subreaper), so it sends
  itself the signal. The expected parent is best known by the parent itself: a process
  started by ``netpulse up`` gets the supervisor's pid in ``NETPULSE_PARENT_PID``
  (:func:`child_env`, read by :func:`die_with_parent_from_env` first thing in
  ``python -m netpulse``); without it the parent read right before the request is used, which
  misses only a parent that died before even that.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1

#: The pid of the process a NetPulse child must die with (set by ``netpulse up``).
PARENT_PID_ENV = "NETPULSE_PARENT_PID"


def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, or None where there is none (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent(sig: int = signal.SIGTERM, expected_parent: int | None = None) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies.

    ``expected_parent`` is the pid the parent had when it started this process; when the
    process's parent is another one by the time the request is in place, the parent died
    first and ``sig`` is sent right away. SIGTERM by default, so NetPulse's processes stop as
    they do on request (a node finishes its running jobs, a pool stops its workers)."""
    prctl = _prctl()
    if prctl is None:
        log.debug("die_with_parent: PR_SET_PDEATHSIG is Linux only; nothing done")
        return
    parent = expected_parent if expected_parent is not None else os.getppid()
    if prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        log.warning(
            "prctl(PR_SET_PDEATHSIG, %s) failed (errno %d); this process will outlive its "
            "parent if the parent is killed",
            signal.Signals(sig).name,
            ctypes.get_errno(),
        )
        return
    if os.getppid() != parent or parent == 1:
        log.warning(
            "parent process %d is gone (now adopted by %d); stopping with %s",
            parent,
            os.getppid(),
            signal.Signals(sig).name,
        )
        os.kill(os.getpid(), sig)


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a ``python -m netpulse`` child that must die with this process."""
    return {**env, PARENT_PID_ENV: str(os.getpid())}


def die_with_parent_from_env(sig: int = signal.SIGTERM) -> None:
    """Die with the process named by ``NETPULSE_PARENT_PID``, if set.

    The variable is removed from the environment at once: it names this process's parent, and
    a process this one starts in turn must not take it for its own."""
    value = os.environ.pop(PARENT_PID_ENV, None)
    if not value:
        return
    try:
        parent = int(value)
    except ValueError:
        log.warning("%s=%r is not a pid; not dying with the parent", PARENT_PID_ENV, value)
        return
    die_with_parent(sig, expected_parent=parent)


def preexec_die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], Any] | None:
    """A ``preexec_fn`` for ``subprocess.Popen`` of a program that is not NetPulse (and so
    cannot ask by itself), such as ``redis-server``; None where the kernel has no such request.

    ``prctl`` is looked up here, in the parent: between ``fork`` and ``exec`` the child may
    only make plain system calls (no imports, no logging, no locks another thread could hold).
    Use it only in a parent that has no other threads at that moment."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()
    getppid, kill, getpid = os.getppid, os.kill, os.getpid

    def request() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if getppid() != parent:
            kill(getpid(), sig)

    return request
