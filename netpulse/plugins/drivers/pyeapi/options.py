"""What the pyeapi driver uses from ``connection_args`` and ``driver_args``: its allowlist.

Documented in docs/drivers.md (keep the two in step).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from netpulse.drivers.options import FilePath, Options, Seconds

TRANSPORTS = ("https", "http")
ENCODINGS = ("json", "text")


class ConnectionOptions(Options):
    transport: Literal["https", "http"] | None = Field(None, description="https default.")
    timeout: Seconds | None = Field(None, description="Per request (s), default 30.")
    verify: bool | None = Field(None, description="Check the switch's TLS certificate.")
    ca_file: FilePath | None = Field(None, description="CA bundle for verify, in files_dir.")
    cert_file: FilePath | None = Field(None, description="Client certificate, in files_dir.")
    key_file: FilePath | None = Field(None, description="Its private key, in files_dir.")


class DriverOptions(Options):
    encoding: Literal["json", "text"] | None = Field(None, description="json default.")
