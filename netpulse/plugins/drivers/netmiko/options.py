"""What the netmiko driver passes to netmiko: its allowlist of options.

``ConnectionOptions`` are the ``connection_args`` (beside host, device_type, username,
password, port and secret) given to ``netmiko.ConnectHandler``; ``DriverOptions`` are the
``driver_args`` given to ``send_command`` and ``send_config_set``. Anything else is refused
when the job is submitted. Documented in docs/drivers.md (keep the two in step).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from netpulse.drivers.options import FilePath, Options, Seconds

_WORKER_FILE = (
    "it would make the worker write a file at a path the client chooses; session logs "
    "are not supported"
)
_WORKER_CREDENTIALS = "it would let the job log in with the worker's own SSH agent keys"
_NOT_JSON = "it takes a Python object, which a job cannot carry"

#: netmiko options the driver refuses, and why (the message the client gets).
REFUSED: dict[str, str] = {
    "session_log": _WORKER_FILE,
    "session_log_record_writes": _WORKER_FILE,
    "session_log_file_mode": _WORKER_FILE,
    "allow_agent": _WORKER_CREDENTIALS,
    "pkey": _NOT_JSON,
    "sock": _NOT_JSON,
    "sock_telnet": "it would make the worker connect through a proxy the client chooses",
    "serial_settings": "serial ports of the worker host are not available to jobs",
    "auto_connect": "the driver opens the session itself",
    "ip": "give the address as host",
}

#: Device types that would open a port of the worker host rather than a network session.
REFUSED_DEVICE_SUFFIXES = ("_serial",)


class ConnectionOptions(Options):
    REFUSED: ClassVar[dict[str, str]] = REFUSED

    use_keys: bool | None = Field(None, description="Authenticate with key_file.")
    key_file: FilePath | None = Field(None, description="SSH private key (in files_dir).")
    passphrase: str | None = Field(None, repr=False, description="The key's passphrase.")
    ssh_config_file: FilePath | None = Field(None, description="OpenSSH client config.")
    ssh_strict: bool | None = Field(None, description="Refuse unknown host keys.")
    system_host_keys: bool | None = Field(None, description="Load the worker's known_hosts.")
    alt_host_keys: bool | None = Field(None, description="Load alt_key_file as known_hosts.")
    alt_key_file: FilePath | None = Field(None, description="A known_hosts file.")
    disabled_algorithms: dict[str, list[str]] | None = None
    disable_sha2_fix: bool | None = None
    conn_timeout: Seconds | None = None
    auth_timeout: Seconds | None = None
    banner_timeout: Seconds | None = None
    blocking_timeout: Seconds | None = None
    timeout: Seconds | None = None
    session_timeout: Seconds | None = None
    read_timeout_override: Seconds | None = None
    keepalive: Seconds | None = None
    global_delay_factor: float | None = Field(None, ge=0, le=100)
    global_cmd_verify: bool | None = None
    fast_cli: bool | None = None
    default_enter: str | None = Field(None, max_length=16)
    response_return: str | None = Field(None, max_length=16)
    encoding: str | None = Field(None, max_length=32)
    allow_auto_change: bool | None = None
    disable_lf_normalization: bool | None = None
    verbose: bool | None = None


class DriverOptions(Options):
    REFUSED: ClassVar[dict[str, str]] = {
        name: "the driver sets it itself (config mode is entered once per push)"
        for name in ("enter_config_mode", "exit_config_mode", "error_pattern")
    }

    expect_string: str | None = Field(None, max_length=1024)
    read_timeout: Seconds | None = None
    delay_factor: float | None = Field(None, ge=0, le=100)
    max_loops: int | None = Field(None, ge=1, le=100000)
    auto_find_prompt: bool | None = None
    strip_prompt: bool | None = None
    strip_command: bool | None = None
    normalize: bool | None = None
    cmd_verify: bool | None = None
    use_textfsm: bool | None = None
    textfsm_template: FilePath | None = None
    use_ttp: bool | None = None
    ttp_template: FilePath | None = None
    use_genie: bool | None = None
    raise_parsing_error: bool | None = None
    config_mode_command: str | None = Field(None, max_length=256)
    terminator: str | None = Field(None, max_length=16)
    bypass_commands: str | None = Field(None, max_length=1024)
