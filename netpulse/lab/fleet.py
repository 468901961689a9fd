"""A fleet of simulated network devices (FakeNOS SSH servers) on loopback.

Used by ``netpulse lab`` and by the test suite so that jobs run against real SSH servers
speaking each platform's CLI, without any real device. Every device listens on its own
port of one loopback address and has its own hostname (its prompt).

Why not plain ``FakeNOS(inventory)``:

* FakeNOS re-parses a platform's YAML for every device (50 IOS devices: 23 s); the lab
  parses each platform once and passes it as a plugin (:func:`~netpulse.lab.platforms.build_nos`).
* FakeNOS validates its 2048-bit RSA host key again for every device (~60 ms each, under
  the GIL); the lab gives all devices one fresh 1024-bit key (~10 ms each).
* FakeNOS stops devices one after another, ~1 s each; the lab stops them in parallel.
* Devices need config mode for netmiko's ``send_config_set`` (:mod:`netpulse.lab.shell`).
* FakeNOS calls ``listen()`` in a background thread, so a client connecting right after
  ``start()`` can be refused; :meth:`LabFleet.start` waits until every port listens.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import paramiko
from fakenos import FakeNOS

from netpulse.lab.logs import quiet_fakenos_logging
from netpulse.lab.platforms import build_nos, profile_for
from netpulse.lab.shell import LabShell
from netpulse.runtime.ports import free_ports, wait_listening

__all__ = ["LabDevice", "LabDeviceSpec", "LabFleet", "default_specs"]

log = logging.getLogger(__name__)

LAB_USERNAME = "admin"
LAB_PASSWORD = "admin"  # lab-only credentials; the fleet refuses non-loopback addresses
LAB_SECRET = "admin"

_START_TIMEOUT_S = 10.0
_HOST_KEY_BITS = 1024


@dataclass(frozen=True)
class LabDeviceSpec:
    """What to simulate: a hostname, a FakeNOS platform, an optional fixed port and
    optional extra FakeNOS command entries (``{line: {output, prompt, new_prompt, ...}}``,
    ``output`` may be a function ``f(device, base_prompt, current_prompt, command)``)."""

    name: str
    platform: str
    port: int | None = None
    extra_commands: dict[str, dict[str, Any]] | None = None


@dataclass(frozen=True)
class LabDevice:
    """A running simulated device and how to log in to it."""

    name: str
    host: str
    port: int
    device_type: str
    username: str
    password: str
    secret: str

    def connection_args(self) -> dict[str, Any]:
        """Keyword arguments for ``netmiko.ConnectHandler``."""
        return {
            "device_type": self.device_type,
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "secret": self.secret,
        }


def default_specs() -> list[LabDeviceSpec]:
    """The standard lab: two IOS routers, one of each of EOS, Junos and Linux."""
    return [
        LabDeviceSpec("ios-1", "cisco_ios"),
        LabDeviceSpec("ios-2", "cisco_ios"),
        LabDeviceSpec("eos-1", "arista_eos"),
        LabDeviceSpec("junos-1", "juniper_junos"),
        LabDeviceSpec("linux-1", "linux"),
    ]


class LabFleet:
    """Start and stop a set of simulated devices; a context manager.

    ``base_port=None`` lets the kernel pick free ports; otherwise devices without an
    explicit port get ``base_port``, ``base_port + 1``, ... in spec order.
    """

    def __init__(
        self,
        devices: list[LabDeviceSpec] | None = None,
        host: str = "127.0.0.1",
        base_port: int | None = None,
    ) -> None:
        self._specs = list(devices) if devices is not None else default_specs()
        self._host = _require_loopback(host)
        self._base_port = base_port
        self._validate_specs()
        self._net: FakeNOS | None = None
        self._devices: list[LabDevice] = []

    @classmethod
    def many(
        cls,
        platform: str = "cisco_ios",
        count: int = 20,
        host: str = "127.0.0.1",
        base_port: int | None = None,
        name_prefix: str | None = None,
    ) -> LabFleet:
        """A fleet of ``count`` devices of one platform, named ``<prefix>01``, ... (benchmarks)."""
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        prefix = name_prefix if name_prefix is not None else platform.replace("_", "-") + "-"
        width = max(2, len(str(count)))
        specs = [LabDeviceSpec(f"{prefix}{i:0{width}d}", platform) for i in range(1, count + 1)]
        return cls(specs, host=host, base_port=base_port)

    @property
    def devices(self) -> list[LabDevice]:
        """The running devices, in spec order (empty before :meth:`start`)."""
        return list(self._devices)

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._net is not None

    def device(self, name: str) -> LabDevice:
        """The running device called ``name``."""
        for device in self._devices:
            if device.name == name:
                return device
        raise KeyError(f"no lab device named {name!r}; have {[d.name for d in self._devices]}")

    def start(self) -> list[LabDevice]:
        """Start every device and return them once all of their ports accept connections."""
        if self._net is not None:
            raise RuntimeError("lab fleet already started")
        quiet_fakenos_logging()
        ports = self._assign_ports()
        with tempfile.TemporaryDirectory(prefix="netpulse-lab-") as key_dir:
            # Each device reads the host key file once, in start(); then it can go.
            net = FakeNOS(
                inventory=self._inventory(ports, _write_host_key(Path(key_dir))),
                plugins=[build_nos(p) for p in sorted({s.platform for s in self._specs})],
            )
            # The inventory schema only accepts the shell name "CMDShell"; swap in ours.
            net.shell_plugins["CMDShell"] = LabShell
            try:
                net.start()
                wait_listening(ports, host=self._host, timeout=_START_TIMEOUT_S)
            except BaseException:
                _stop_hosts(net)
                raise
        self._net = net
        self._devices = [
            LabDevice(
                name=spec.name,
                host=self._host,
                port=port,
                device_type=spec.platform,
                username=LAB_USERNAME,
                password=LAB_PASSWORD,
                secret=LAB_SECRET,
            )
            for spec, port in zip(self._specs, ports, strict=True)
        ]
        log.info("lab fleet started: %d devices on %s", len(self._devices), self._host)
        return self.devices

    def stop(self) -> None:
        """Stop every device (in parallel); open sessions are closed. Idempotent."""
        net, self._net = self._net, None
        self._devices = []
        if net is not None:
            _stop_hosts(net)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _validate_specs(self) -> None:
        names = [s.name for s in self._specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate lab device names: {duplicates}")
        for spec in self._specs:
            profile_for(spec.platform)  # raises on an unknown platform

    def _assign_ports(self) -> list[int]:
        """Explicit ports first, then ``base_port + i`` or kernel-chosen free ports."""
        if self._base_port is None:
            auto = iter(free_ports(sum(s.port is None for s in self._specs), self._host))
            ports = [s.port if s.port is not None else next(auto) for s in self._specs]
            chosen = [s.port for s in self._specs if s.port is not None]
        else:
            ports = [
                s.port if s.port is not None else self._base_port + i
                for i, s in enumerate(self._specs)
            ]
            chosen = ports
        if len(set(ports)) != len(ports):
            raise ValueError(f"lab devices need distinct ports, got {ports}")
        # FakeNOS binds with SO_REUSEPORT, so a port already served by another
        # SO_REUSEPORT listener would be shared silently: check chosen ports first.
        _require_free(self._host, chosen)
        return ports

    def _inventory(self, ports: list[int], host_key_file: Path) -> dict[str, Any]:
        hosts: dict[str, Any] = {}
        for spec, port in zip(self._specs, ports, strict=True):
            entry: dict[str, Any] = {"port": port, "platform": spec.platform}
            if spec.extra_commands:
                commands = profile_for(spec.platform).rename_prompts(spec.extra_commands)
                entry["nos"] = {"plugin": spec.platform, "configuration": {"commands": commands}}
            hosts[spec.name] = entry
        return {
            "default": {
                "username": LAB_USERNAME,
                "password": LAB_PASSWORD,
                "server": {
                    "plugin": "ParamikoSshServer",
                    "configuration": {
                        "address": self._host,
                        "timeout": 1,
                        "ssh_key_file": str(host_key_file),
                    },
                },
                "shell": {"plugin": "CMDShell", "configuration": {}},
            },
            "hosts": hosts,
        }


def _write_host_key(directory: Path) -> Path:
    """Write a fresh 1024-bit RSA host key for this fleet's devices and return its path.

    FakeNOS parses its built-in 2048-bit key once per device, and validating an RSA key
    of that size costs ~60 ms of CPU under the GIL: 1.2 s for 20 devices. A 1024-bit key
    parses in ~10 ms and is good enough for a server that only listens on loopback.
    """
    path = directory / "lab_host_rsa_key"
    paramiko.RSAKey.generate(_HOST_KEY_BITS).write_private_key_file(str(path))
    return path


def _stop_hosts(net: FakeNOS) -> None:
    """Stop all started hosts concurrently: each FakeNOS stop waits up to ~1 s for its
    accept loop, so stopping 50 one by one takes most of a minute."""
    hosts = [h for h in net.hosts.values() if h.running]
    if not hosts:
        return
    with ThreadPoolExecutor(max_workers=min(64, len(hosts)), thread_name_prefix="lab-stop") as ex:
        # list() re-raises the first failure after the executor has stopped every host.
        list(ex.map(lambda h: h.stop(), hosts))


def _require_loopback(host: str) -> str:
    """Refuse any non-loopback address: the devices accept lab-only credentials."""
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError as exc:
        raise ValueError(f"lab host must be an IPv4 loopback address, got {host!r}") from exc
    if not address.is_loopback:
        raise ValueError(f"lab host must be in 127.0.0.0/8, got {host!r}")
    return host


def _require_free(host: str, ports: Iterable[int]) -> None:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError as exc:
                raise OSError(exc.errno, f"lab port {host}:{port} is in use: {exc}") from exc
