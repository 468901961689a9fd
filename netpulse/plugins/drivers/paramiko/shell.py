"""One command on a Linux host's shell over an SSH ``exec`` channel.

What the host's shell runs is built here (:func:`shell_command`, :func:`with_sudo`), and
:func:`run_on_channel` runs it: it feeds stdin (the sudo password, then the answers of
``expect_map`` as their prompts appear) and collects stdout, stderr and the exit status.

The sudo password travels on the channel's stdin only: never on a command line (so never
in the host's process list), and it is masked in whatever the command prints back (a
pseudo-terminal echoes what it is sent).
"""

from __future__ import annotations

import re
import select
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

import paramiko

#: What replaces the sudo password wherever the host would print it back.
MASK = "********"
_READ_BYTES = 32768
_POLL_S = 0.05
#: How much of the latest output a prompt of ``expect_map`` is searched in.
_PROMPT_WINDOW = 4096


def shell_command(command: str, options: dict[str, Any]) -> str:
    """``command`` as the remote shell runs it: the exported ``environment`` and the
    ``working_directory`` first (a directory that does not exist fails the command, with
    the shell's reason), then ``sudo`` around it all. Values are shell-quoted; names are
    checked identifiers."""
    steps = []
    environment = options.get("environment") or {}
    if environment:
        steps.append("export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in environment.items()))
    if options.get("working_directory"):
        steps.append("cd " + shlex.quote(str(options["working_directory"])))
    # A brace group, so that `;`, `||` or a pipe in the command cannot slip past the steps.
    text = " && ".join(steps) + " && {\n" + command + "\n}" if steps else command
    return with_sudo(text, options) if options.get("sudo") else text


def with_sudo(text: str, options: dict[str, Any]) -> str:
    """``text`` run by root through ``sudo``: ``-S`` reading the password from stdin when
    one is given (``-k``: always asked, so a cached login never leaves the password for
    the command to read), ``-n`` (fail rather than wait for a password) when none is.

    Without ``expect_map`` the command's own stdin is ``/dev/null``: with a password-less
    sudo rule the password line must not become the command's input.
    """
    if not options.get("expect_map"):
        text = "exec </dev/null\n" + text
    flags = "-k -S -p ''" if options.get("sudo_password") else "-n"
    return f"sudo {flags} -- sh -c {shlex.quote(text)}"


@dataclass
class Outcome:
    """What a command printed and how it ended (``status`` -1: no exit status came)."""

    stdout: str
    stderr: str
    status: int


@dataclass
class _Prompts:
    """``expect_map`` as it is answered: each prompt once per appearance in new output."""

    answers: list[tuple[re.Pattern[str], str]]
    seen: str = field(default="")

    def answer_for(self, new_output: str) -> str | None:
        # Only the recent output: a prompt is short, and a long output must not make each
        # search slower than the last.
        self.seen = (self.seen + new_output)[-_PROMPT_WINDOW:]
        for pattern, answer in self.answers:
            if pattern.search(self.seen):
                self.seen = ""  # the next prompt must appear after this answer
                return answer
        return None


def run_on_channel(
    transport: paramiko.Transport,
    command_text: str,
    options: dict[str, Any],
    idle_timeout: float | None,
) -> Outcome:
    """Run ``command_text`` on a new session channel of ``transport``.

    ``idle_timeout``: raise ``TimeoutError`` when the command prints nothing for that long
    (None: wait for ever). ``OSError``/``SSHException`` mean the session is lost.
    """
    channel = transport.open_session()
    try:
        if options.get("get_pty"):
            channel.get_pty()
        channel.exec_command(command_text)
        password = options.get("sudo_password") if options.get("sudo") else None
        if password:
            channel.sendall((password + "\n").encode())
        prompts = _Prompts(
            [(re.compile(p), a) for p, a in (options.get("expect_map") or {}).items()]
        )
        if not prompts.answers:
            channel.shutdown_write()  # the command reads EOF, never waits for input
        out, err = _collect(channel, prompts, idle_timeout)
        status = channel.recv_exit_status()
    finally:
        channel.close()
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    if password:
        stdout, stderr = stdout.replace(password, MASK), stderr.replace(password, MASK)
    return Outcome(stdout, stderr, status)


def _collect(
    channel: paramiko.Channel, prompts: _Prompts, idle_timeout: float | None
) -> tuple[bytes, bytes]:
    """Read both streams until the command ends (its exit status or the channel closing);
    answer prompts as they appear. SSH keeps order, so once the exit status is in, what
    the command printed is in the buffers already."""
    out, err = bytearray(), bytearray()
    last_data = time.monotonic()
    while True:
        if _drain(channel, out, err, prompts):
            last_data = time.monotonic()
            continue
        if channel.exit_status_ready() or channel.closed:
            _drain(channel, out, err, prompts)
            return bytes(out), bytes(err)
        waited = time.monotonic() - last_data
        if idle_timeout is not None and waited > idle_timeout:
            raise TimeoutError(f"no output for {idle_timeout:g} s")
        wait = _POLL_S if idle_timeout is None else max(0.0, min(_POLL_S, idle_timeout - waited))
        if channel.eof_received:
            # Both streams are done: only the exit status is to come (a wake-up of its own;
            # the channel's pipe stays readable after EOF, so select would spin).
            channel.status_event.wait(wait)
        else:
            select.select([channel], [], [], wait)


def _drain(channel: paramiko.Channel, out: bytearray, err: bytearray, prompts: _Prompts) -> bool:
    """Move what arrived into ``out``/``err``; answer a prompt it completes. True if any."""
    got = False
    for ready, receive, buffer in (
        (channel.recv_ready, channel.recv, out),
        (channel.recv_stderr_ready, channel.recv_stderr, err),
    ):
        while ready():
            chunk = receive(_READ_BYTES)
            if not chunk:
                break
            buffer += chunk
            got = True
            if prompts.answers:
                answer = prompts.answer_for(chunk.decode(errors="replace"))
                if answer is not None:
                    channel.sendall((answer + "\n").encode())
    return got
