"""What the napalm driver passes to napalm: its allowlist of options.

The ``connection_args`` beside host, device_type, username, password, port and secret go to
napalm's ``optional_args`` (``timeout`` is napalm's own argument); they may also be given
inside ``connection_args.optional_args``, which has the same allowlist. napalm's SSH drivers
(ios, nxos_ssh, iosxr) hand many optional_args on to netmiko, so netmiko's refusals apply
here too. Documented in docs/drivers.md (keep the two in step).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from netpulse.drivers.options import FilePath, Options, Seconds
from netpulse.plugins.drivers.netmiko.options import REFUSED as NETMIKO_REFUSED

REFUSED: dict[str, str] = {
    **NETMIKO_REFUSED,
    "eos_transport": "give the eAPI transport as transport",
    "candidate_cfg": "the driver keeps napalm's file names on the device",
    "merge_cfg": "the driver keeps napalm's file names on the device",
    "rollback_cfg": "the driver keeps napalm's file names on the device",
    "netmiko_optional_args": "give netmiko's options directly (the allowed ones)",
}


class NapalmOptions(Options):
    """napalm ``optional_args`` a job may set (each used by some of napalm's drivers)."""

    REFUSED: ClassVar[dict[str, str]] = REFUSED

    # transport: eos (https, http, ssh), ios (ssh, telnet), nxos (https, http)
    transport: Literal["https", "http", "ssh", "telnet"] | None = None
    enable_password: str | None = Field(None, repr=False, description="eos enable password.")
    force_no_enable: bool | None = None
    # SSH login (ios, iosxr, nxos_ssh through netmiko; junos)
    use_keys: bool | None = None
    key_file: FilePath | None = None
    passphrase: str | None = Field(None, repr=False)
    ssh_config_file: FilePath | None = None
    ssh_strict: bool | None = None
    system_host_keys: bool | None = None
    alt_host_keys: bool | None = None
    alt_key_file: FilePath | None = None
    conn_timeout: Seconds | None = None
    auth_timeout: Seconds | None = None
    banner_timeout: Seconds | None = None
    read_timeout_override: Seconds | None = None
    keepalive: Seconds | None = None
    global_delay_factor: float | None = Field(None, ge=0, le=100)
    fast_cli: bool | None = None
    # ios
    inline_transfer: bool | None = None
    dest_file_system: str | None = Field(None, max_length=64)
    auto_rollback_on_error: bool | None = None
    auto_file_prompt: bool | None = None
    canonical_int: bool | None = None
    # eos
    eos_autoComplete: bool | None = None
    eos_fn0039_config: bool | None = None
    lock_disable: bool | None = None
    # junos, iosxr
    config_lock: bool | None = None
    config_private: bool | None = None
    ignore_warning: bool | None = None
    auto_probe: int | None = Field(None, ge=0, le=3600)
    huge_tree: bool | None = None
    # nxos (NX-API)
    ssl_verify: bool | None = None
    nxos_protocol: Literal["https", "http"] | None = None
    # eos over eAPI with a client certificate (pyeapi's https_certs transport)
    ca_file: FilePath | None = None
    cert_file: FilePath | None = None


class ConnectionOptions(NapalmOptions):
    timeout: Seconds | None = Field(None, description="napalm's timeout (s), default 60.")
    optional_args: NapalmOptions | None = None


class DriverOptions(Options):
    getter_args: dict[str, dict[str, Any]] | None = Field(
        None, description="Getter name -> its keyword arguments."
    )
    encoding: str | None = Field(None, max_length=16, description="Passed to cli (eos: json).")
    message: str | None = Field(
        None, min_length=1, max_length=1024, description="Commit message (junos, iosxr)."
    )
    revert_in: int | None = Field(
        None,
        ge=1,
        le=86400,
        description="Commit-confirm: the device reverts after N seconds unless confirmed "
        "(eos; ios and junos in whole minutes).",
    )
