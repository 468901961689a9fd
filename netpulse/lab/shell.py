"""The command shell every lab device runs: FakeNOS's ``CMDShell`` plus config-mode rules.

FakeNOS matches whole lines against an exact command table, so it cannot accept the
open-ended lines of a configuration (``interface Gi0/1``, ``description x``, ``set
interfaces ...``). :class:`LabShell` keeps FakeNOS's behaviour for every exact command
valid at the current prompt and answers everything else itself:

* in a config mode: from the platform's :class:`~netpulse.lab.platforms.PlatformProfile`
  rules (``bogus...`` is rejected, sub-mode lines change the prompt, the rest is accepted);
* elsewhere: the platform's ``_default_`` reply (e.g. IOS's ``% Invalid input``), without
  the ERROR log line FakeNOS writes for every unknown command. A callable ``_default_``
  is called like any other FakeNOS command output (FakeNOS itself cannot do that).
"""

from __future__ import annotations

import logging
from typing import Any

from fakenos.plugins.shell.cmd_shell import CMDShell

from netpulse.lab.platforms import LabNos

__all__ = ["LabShell"]

log = logging.getLogger(__name__)


class LabShell(CMDShell):
    """FakeNOS shell with per-platform config-mode handling (see module docstring)."""

    # Set by FakeNOS's ``CMDShell.__init__`` (fakenos is untyped); declared so mypy knows it.
    prompt: str

    def default(self, line: str) -> bool:
        """Answer one input line; return True to end the session (FakeNOS contract)."""
        entry = self._resolve(line)
        if entry is not None and self._check_prompt(entry.get("prompt")):
            return bool(super().default(line))

        profile = self.nos.profile if isinstance(self.nos, LabNos) else None
        if profile is not None and profile.is_config_prompt(self.prompt):
            reply = profile.config_reply(line, self.base_prompt)
            if reply.new_prompt is not None:
                self.prompt = reply.new_prompt
            self.writeline(reply.output)
        else:
            log.debug("%s: no command %r at prompt %r", self.base_prompt, line, self.prompt)
            self.writeline(self._unknown_command_output(line))
        return not self.is_running.is_set()

    def _resolve(self, line: str) -> dict[str, Any] | None:
        """Return the command entry for ``line`` with its alias merged in, as FakeNOS does."""
        entry = self.commands.get(line)
        if entry is None or line == "_default_":
            return None
        alias = entry.get("alias")
        if alias:
            entry = {**self.commands[alias], **entry}
        return entry

    def _unknown_command_output(self, line: str) -> str:
        """The platform's ``_default_`` output, called if it is a function."""
        output = self.commands["_default_"]["output"]
        if callable(output):
            output = output(
                self.nos.device,
                base_prompt=self.base_prompt,
                current_prompt=self.prompt,
                command=line,
            )
        if not isinstance(output, str):
            raise TypeError(f"_default_ output must be a string, got {type(output).__name__}")
        return output.replace("{base_prompt}", self.base_prompt)
