"""What the paramiko driver passes to ``SSHClient.connect`` and ``exec_command``: its allowlist.

Documented in docs/drivers.md (keep the two in step). Secrets (``pkey``, ``*password``,
``*passphrase``) are ``repr=False`` and, by their names, left out of webhook payloads
(``netpulse.models.request.is_secret_option``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BeforeValidator, Field, StringConstraints, field_validator, model_validator

from netpulse.drivers.options import FilePath, Options, Seconds


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _agent_allowed(value: bool | None) -> bool | None:
    from netpulse.config import get_settings

    if value and not get_settings().drivers.allow_ssh_agent:
        raise ValueError(
            "the SSH agent is off on this server: a job would log in with the worker's own "
            "agent keys (set drivers.allow_ssh_agent: true, NETPULSE_DRIVERS__ALLOW_SSH_AGENT, "
            "to allow it)"
        )
    return value


#: A private key as text (PEM or OpenSSH format): RSA, Ed25519 or ECDSA.
KeyText = Annotated[str, StringConstraints(min_length=1, max_length=65536)]
Port = Annotated[int, Field(ge=1, le=65535)]


class ConnectionOptions(Options):
    REFUSED: ClassVar[dict[str, str]] = {
        "sock": "it takes a Python object, which a job cannot carry (use proxy_host)",
    }

    key_filename: Annotated[list[FilePath], BeforeValidator(_as_list)] | None = Field(
        None, description="SSH private key file (or a list of them), inside files_dir."
    )
    pkey: KeyText | None = Field(None, repr=False, description="The private key itself, as text.")
    passphrase: str | None = Field(None, repr=False, description="The key's passphrase.")
    timeout: Seconds | None = Field(None, description="Connect, banner and auth timeout (s).")
    banner_timeout: Seconds | None = Field(None, description="Wait for the SSH banner (s).")
    auth_timeout: Seconds | None = Field(None, description="Wait for authentication (s).")
    host_key_policy: Literal["auto_add", "reject"] | None = None
    look_for_keys: bool | None = None
    allow_agent: Annotated[bool | None, BeforeValidator(_agent_allowed)] = Field(
        None, description="Use the worker's SSH agent (only with drivers.allow_ssh_agent)."
    )
    compress: bool | None = Field(None, description="zlib compression of the SSH transport.")
    keepalive: Seconds | None = Field(
        None, description="Send an SSH keepalive every N seconds (0: never)."
    )
    proxy_host: str | None = Field(
        None, min_length=1, max_length=255, description="Jump host the session goes through."
    )
    proxy_port: Port | None = Field(None, description="The jump host's SSH port (22).")
    proxy_username: str | None = Field(None, min_length=1, max_length=255)
    proxy_password: str | None = Field(None, repr=False)
    proxy_key_filename: FilePath | None = Field(None, description="Jump host key, in files_dir.")
    proxy_pkey: KeyText | None = Field(None, repr=False)
    proxy_passphrase: str | None = Field(None, repr=False)

    @model_validator(mode="after")
    def _proxy_needs_a_host(self) -> Self:
        given = [
            name
            for name in type(self).model_fields
            if name.startswith("proxy_") and name != "proxy_host" and getattr(self, name)
        ]
        if given and self.proxy_host is None:
            raise ValueError(f"{', '.join(given)} given without proxy_host (the jump host)")
        return self


#: A shell variable name (exported before each command).
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
#: An interpreter: a program, maybe with options (`/usr/bin/env python3`, `bash -e`).
Interpreter = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_./+-]+( [A-Za-z0-9_./+=-]+)*$", max_length=256)
]


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
    sudo: bool | None = Field(None, description="Run each command as root through sudo.")
    sudo_password: str | None = Field(
        None, repr=False, description="Fed to `sudo -S` on stdin; never on a command line."
    )
    script_content: str | None = Field(
        None,
        min_length=1,
        max_length=1024 * 1024,
        description="A script to run in place of the commands (uploaded, run, removed).",
    )
    script_interpreter: Interpreter | None = Field(
        None, description="The program that runs script_content (default /bin/sh)."
    )
    expect_map: dict[str, str] | None = Field(
        None,
        max_length=32,
        description="Prompt (a regular expression) -> the line answered when it appears.",
    )

    @field_validator("expect_map")
    @classmethod
    def _prompts_compile(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for prompt in value or {}:
            if not prompt:
                raise ValueError("a prompt of expect_map is empty")
            try:
                re.compile(prompt)
            except re.error as exc:
                raise ValueError(
                    f"the prompt {prompt!r} is not a regular expression: {exc}"
                ) from None
        return value

    @model_validator(mode="after")
    def _companions(self) -> Self:
        if self.sudo_password is not None and not self.sudo:
            raise ValueError("sudo_password is given without sudo: true")
        if self.script_interpreter is not None and self.script_content is None:
            raise ValueError("script_interpreter is given without script_content")
        return self
