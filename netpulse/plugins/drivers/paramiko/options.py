"""What the paramiko driver passes to ``SSHClient.connect`` and ``exec_command``: its allowlist.

Documented in docs/drivers.md (keep the two in step).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field

from netpulse.drivers.options import FilePath, Options, Seconds


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class ConnectionOptions(Options):
    REFUSED: ClassVar[dict[str, str]] = {
        "allow_agent": "it would let the job log in with the worker's own SSH agent keys",
        "pkey": "it takes a Python object, which a job cannot carry",
        "sock": "it takes a Python object, which a job cannot carry",
    }

    key_filename: Annotated[list[FilePath], BeforeValidator(_as_list)] | None = Field(
        None, description="SSH private key file (or a list of them), inside files_dir."
    )
    passphrase: str | None = Field(None, repr=False)
    timeout: Seconds | None = Field(None, description="Connect, banner and auth timeout (s).")
    host_key_policy: Literal["auto_add", "reject"] | None = None
    look_for_keys: bool | None = None


class DriverOptions(Options):
    timeout: Seconds | None = Field(None, description="Bound of each command's channel (s).")
    read_timeout: Seconds | None = Field(None, description="Same as timeout.")
