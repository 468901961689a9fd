"""The netmiko driver's file primitives for ``netpulse.drivers.transfer``: SCP.

SCP copies whole files only, so an appending write (``resume``) sends the rest to a part
file beside the target and appends it with the host's shell, and a read from an offset
reads the whole file. Only a Linux host (``device_type`` ``linux``) has the shell; a
network OS gets plain copies.
"""

from __future__ import annotations

import re
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from netmiko.scp_handler import SCPConn
from scp import SCPException

from netpulse.drivers.transfer import Shell

if TYPE_CHECKING:
    from netmiko import BaseConnection

#: Printed after a command to tell success from failure (the CLI channel has no exit
#: status). No ``$`` in it: netmiko would take the echoed ``$`` for the shell's prompt.
_MARKER = re.compile(r"^__NETPULSE_(OK|FAILED)\s*$", re.MULTILINE)


def linux_shell(conn: BaseConnection) -> Shell:
    """Commands on the host's shell through the CLI session: stdout and stderr come
    mixed, and the status is 0 or 1 (from a marker line)."""

    def run(command: str) -> tuple[str, str, int]:
        wrapped = f"{{ {command} ; }} 2>&1 && echo __NETPULSE_OK || echo __NETPULSE_FAILED"
        output = conn.send_command(wrapped)
        assert isinstance(output, str)  # text: no parser was asked for
        found = _MARKER.search(output)
        status = 0 if found and found.group(1) == "OK" else 1
        text = _MARKER.sub("", output).rstrip("\n")
        return (text, "", 0) if status == 0 else ("", text, status)

    return run


@dataclass
class ScpFiles:
    conn: BaseConnection
    run: Shell | None
    _scp: SCPConn | None = field(default=None, init=False)

    def read(self, path: str, offset: int = 0) -> bytes:
        with tempfile.TemporaryDirectory(prefix="netpulse-scp-") as tmp:
            local = Path(tmp) / "file"
            self._call(lambda scp: scp.scp_get_file(path, str(local)))
            return local.read_bytes()[offset:]

    def write(self, path: str, data: bytes, *, append: bool, chunk_size: int) -> None:
        target = f"{path}.netpulse-part" if append else path
        with tempfile.TemporaryDirectory(prefix="netpulse-scp-") as tmp:
            local = Path(tmp) / "file"
            local.write_bytes(data)
            self._call(lambda scp: scp.scp_put_file(str(local), target))
        if append and self.run is not None:
            part, whole = shlex.quote(target), shlex.quote(path)
            _, err, status = self.run(f"cat -- {part} >> {whole} && rm -f -- {part}")
            if status != 0:
                raise OSError(f"appending the rest failed: {err.strip()}")

    def _call(self, action: object) -> None:
        scp = SCPConn(self.conn)
        try:
            action(scp)  # type: ignore[operator]
        except SCPException as exc:  # the device refused: no such file, permission...
            raise OSError(str(exc)) from None
        finally:
            scp.close()
