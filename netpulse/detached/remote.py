"""What a detached task is on its host: a private directory and the POSIX shell commands that
launch, read, kill, clean up and find tasks there (one round trip each).

Layout: ``$HOME/.netpulse/tasks/<task id>/`` (mode 0700) holds ``cmd`` (the command, run by
``sh``), ``log`` (its stdout and stderr), ``pid`` (the task's process group: the process is
started by ``setsid``, so its pid is its group and session id) and, once it ended, ``exit``
(its exit status, written by a wrapper in the same group and renamed into place, so it is
never read half-written). A task killed as a group never writes ``exit``.

Every command is built here with ``shlex.quote`` for each value; the task id is checked
against :data:`TASK_ID_PATTERN` first, so it can never leave its directory.
"""

from __future__ import annotations

import base64
import re
import shlex
from dataclasses import dataclass

from netpulse.models.request import DETACHED_TASK_ID

#: A task id: what NetPulse makes (32 hex) or a client's own ``task_id`` of this shape
#: (checked where the request enters: ``models.request.DETACHED_TASK_ID``).
TASK_ID_PATTERN = DETACHED_TASK_ID.pattern
#: Where tasks live, relative to the login's home directory.
TASKS_DIR = ".netpulse/tasks"
#: A shell ``$HOME``-relative path, quoted for the shell except the ``$HOME`` part.
_HOME = '"$HOME"/'


#: Sets ``r`` (1 while the task runs) and ``e`` (its exit status, or ``-``) for the task
#: whose pid is ``p`` in directory ``$d``. Liveness first, then the exit file: the wrapper
#: writes ``exit`` before it ends, so a task seen gone has it unless it was killed, and one
#: that ends between the two reads is seen ended. A zombie (an orphan not reaped yet) is not
#: running. ``kill`` takes no ``--`` in dash: ``kill -TERM "-$p"`` is the portable form.
_STATE = (
    'r=0; if [ -n "$p" ] && kill -0 "$p" 2>/dev/null '
    "&& ! grep -q ') Z ' \"/proc/$p/stat\" 2>/dev/null; then r=1; fi; "
    'e=$(cat "$d/exit" 2>/dev/null || echo -); if [ "$e" != - ]; then r=0; fi;'
)


def _checked(task_id: str) -> str:
    if not re.fullmatch(TASK_ID_PATTERN, task_id):
        raise ValueError(f"task id {task_id!r} is not of the form {TASK_ID_PATTERN}")
    return task_id


def task_dir(task_id: str) -> str:
    """The task's directory as a shell word (expands ``$HOME`` on the host)."""
    return _HOME + shlex.quote(f"{TASKS_DIR}/{_checked(task_id)}")


def launch(task_id: str, command: str) -> str:
    """Make the task's private directory, store the command, start it in a session of its
    own with its output in ``log``, and print its pid. Fails (non-zero) when the directory
    exists already: a task id is launched once."""
    d = task_dir(task_id)
    wrapper = (
        'sh "$1/cmd" >"$1/log" 2>&1 </dev/null; echo $? >"$1/exit.tmp"; mv "$1/exit.tmp" "$1/exit"'
    )
    return (
        f"umask 077 && mkdir -p {_HOME}{shlex.quote(TASKS_DIR)} && mkdir {d} && "
        f"chmod 700 {_HOME}.netpulse {_HOME}{shlex.quote(TASKS_DIR)} {d} && "
        f"printf '%s\\n' {shlex.quote(command)} >{d}/cmd && "
        f"{{ setsid sh -c {shlex.quote(wrapper)} sh {d} >/dev/null 2>&1 </dev/null & }} && "
        f"echo $! >{d}/pid && cat {d}/pid"
    )


@dataclass(frozen=True)
class Poll:
    """What one look at a task found."""

    #: False when the task's directory is gone (removed on the host).
    present: bool
    #: Whether the task's process still runs.
    running: bool
    #: The exit status, once the task ended by itself (None: running, or killed).
    exit_code: int | None
    #: Bytes of ``log`` in total, when looked at.
    size: int
    #: The bytes read from the asked offset (at most the asked count).
    data: bytes


def poll(task_id: str, offset: int, limit: int) -> str:
    """One look: ``<present> <running> <exit or -> <size>`` on the first line, then up to
    ``limit`` bytes of ``log`` from ``offset``, base64 (the log may hold any bytes). The
    state is read before the size, so a task seen ended has its whole log counted. A task
    without its ``pid`` file is gone: launch writes it before the task is known, and only a
    removal takes it (a directory being removed is not mistaken for a killed task)."""
    d = task_dir(task_id)
    return (
        f'd={d}; p=$(cat "$d/pid" 2>/dev/null); '
        "if [ -z \"$p\" ]; then echo '0 0 - 0'; exit 0; fi; "
        f"{_STATE} "
        's=$(wc -c <"$d/log" 2>/dev/null || echo 0); '
        'echo "1 $r $e $s"; '
        f'tail -c +{int(offset) + 1} "$d/log" 2>/dev/null | head -c {int(limit)} | base64'
    )


def parse_poll(stdout: str) -> Poll:
    """The :func:`poll` command's output, read back; ``ValueError`` when it is not that."""
    head, _, rest = stdout.partition("\n")
    fields = head.split()
    if len(fields) != 4:
        raise ValueError(f"unexpected answer to a task poll: {head[:200]!r}")
    present, running, exit_text, size = fields
    exit_code = None if exit_text == "-" else int(exit_text)
    data = base64.b64decode("".join(rest.split())) if rest.strip() else b""
    return Poll(present == "1", running == "1", exit_code, int(size), data)


def kill(task_id: str) -> str:
    """Stop the task's process group: TERM, then KILL after 5 s if it is still there."""
    d = task_dir(task_id)
    return (
        f'd={d}; p=$(cat "$d/pid" 2>/dev/null) || exit 0; '
        'kill -TERM "-$p" 2>/dev/null || exit 0; '
        'i=0; while kill -0 "-$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; '
        'kill -KILL "-$p" 2>/dev/null; exit 0'
    )


def remove(task_id: str) -> str:
    """Remove the task's directory (its log with it)."""
    return f"rm -rf -- {task_dir(task_id)}"


def discover() -> str:
    """One line per task directory on the host: ``<task id> <pid> <exit or -> <running>``."""
    return (
        f'for d in {_HOME}{shlex.quote(TASKS_DIR)}/*/; do [ -f "$d/pid" ] || continue; '
        'p=$(cat "$d/pid"); '
        f"{_STATE} "
        'echo "$(basename "$d") $p $e $r"; done'
    )


def parse_discover(stdout: str) -> list[tuple[str, int, int | None, bool]]:
    """The :func:`discover` command's lines: (task id, pid, exit code or None, running)."""
    found = []
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) != 4 or not re.fullmatch(TASK_ID_PATTERN, parts[0]):
            continue
        task_id, pid, exit_text, running = parts
        found.append(
            (task_id, int(pid), None if exit_text == "-" else int(exit_text), running == "1")
        )
    return found
