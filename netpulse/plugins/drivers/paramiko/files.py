"""The paramiko driver's file primitives for ``netpulse.drivers.transfer``: SFTP."""

from __future__ import annotations

from dataclasses import dataclass

import paramiko

from netpulse.drivers.transfer import Shell


@dataclass
class SftpFiles:
    """Reads and writes over one SFTP session; ``run`` is the driver's shell."""

    sftp: paramiko.SFTPClient
    run: Shell | None

    def read(self, path: str, offset: int = 0) -> bytes:
        with self.sftp.open(path, "rb") as remote:
            remote.seek(offset)
            remote.prefetch()  # pipelined reads: far faster than one request at a time
            return remote.read()

    def write(self, path: str, data: bytes, *, append: bool, chunk_size: int) -> None:
        with self.sftp.open(path, "ab" if append else "wb") as remote:
            remote.set_pipelined(True)
            for start in range(0, len(data), chunk_size):
                remote.write(data[start : start + chunk_size])
