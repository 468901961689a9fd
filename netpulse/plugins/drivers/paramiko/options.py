"""What the paramiko driver passes to ``SSHClient.connect`` and ``exec_command``: its allowlist.

Documented in docs/drivers.md (keep the two in step).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, StringConstraints

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


#: A shell variable name (exported before each command).
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]


class DriverOptions(Options):
    timeout: Seconds | None = Field(None, description="Bound of each command's channel (s).")
    read_timeout: Seconds | None = Field(None, description="Same as timeout.")
    working_directory: str | None = Field(
        None, min_length=1, max_length=4096, description="Directory each command runs in."
    )
    environment: dict[EnvName, str] | None = Field(
        None, description="Variables exported for each command (not via SSH's setenv)."
    )
    get_pty: bool | None = Field(None, description="Run each command on a pseudo-terminal.")
    stop_on_error: bool | None = Field(
        None, description="Stop at the first command with a non-zero exit; the rest not run."
    )
