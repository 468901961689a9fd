"""The napalm driver: vendor-neutral getters, and config as merge, diff, then commit or discard.

``connection_args.device_type`` names napalm's driver (``ios``, ``eos``, ``junos``,
``nxos_ssh``, ``iosxr``...). A command that names a getter (``get_facts``,
``get_interfaces``...) returns the getter's structure (``parsed``, and as JSON in
``stdout``); any other command goes through napalm's ``cli``. A config is merged into a
candidate, compared (the diff is the result's ``stdout``), then committed, or discarded when
``dry_run`` is set or when nothing would change. napalm's commit persists the change on the
platforms that distinguish running and startup config, so ``save`` needs no extra step.

Other ``connection_args`` fields go to napalm's ``optional_args`` (``transport`` for eos,
``secret``, ``ssh_config_file``...), with ``port`` and ``secret`` passed on too;
``timeout`` (s) is napalm's own. ``driver_args.getter_args`` maps a getter to its keyword
arguments (``{"get_route_to": {"destination": "10.0.0.0/8"}}``); ``driver_args.encoding``
is passed to ``cli``.

napalm itself is imported on first use: it takes ~0.7 s, and the controller imports every
driver plugin to validate requests.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from netpulse.drivers.base import BaseDriver, DeviceConnectionError, DriverError
from netpulse.models.job import DriverExecutionResult
from netpulse.models.request import ConnectionArgs, ExecutionRequest
from netpulse.plugins.drivers.interrupt import break_netmiko_session
from netpulse.plugins.drivers.napalm.errors import open_error, session_error
from netpulse.plugins.drivers.napalm.options import ConnectionOptions, DriverOptions
from netpulse.plugins.drivers.netmiko.driver import find_device_error

if TYPE_CHECKING:
    from napalm.base import NetworkDriver

log = logging.getLogger(__name__)

GETTER = re.compile(r"get_[a-z0-9_]+")
#: A few of napalm's built-in drivers, for error messages.
EXAMPLE_DRIVERS = "ios, eos, junos, nxos_ssh, nxos, iosxr"
DEFAULT_TIMEOUT_S = 60.0
#: The napalm platforms whose commit_config takes a message / a revert timer (napalm 5).
COMMIT_MESSAGE_PLATFORMS = frozenset({"junos", "iosxr"})
COMMIT_CONFIRM_PLATFORMS = frozenset({"eos", "ios", "junos"})
#: Platforms whose revert timer counts whole minutes.
MINUTE_TIMERS = frozenset({"ios", "junos"})


class _ConfigFlags(TypedDict):
    """The metadata of a config push's result."""

    dry_run: bool
    committed: bool
    changed: NotRequired[bool]
    message: NotRequired[str]
    revert_in: NotRequired[int]
    pending_confirm: NotRequired[bool]


def napalm_driver_class(name: str) -> type[NetworkDriver]:
    """napalm's driver class called ``name``; ValueError when napalm has none by that name."""
    from napalm import get_network_driver
    from napalm.base.exceptions import ModuleImportError

    try:
        return get_network_driver(name)
    except ModuleImportError as exc:
        raise ValueError(
            f"napalm has no driver {name!r} (built in: {EXAMPLE_DRIVERS}): {exc}"
        ) from None


class NapalmDriver(BaseDriver):
    driver_name = "napalm"
    connection_options = ConnectionOptions
    driver_options = DriverOptions

    device: NetworkDriver | None = None

    @classmethod
    def validate_connection(cls, args: ConnectionArgs) -> None:
        if not args.device_type:
            raise ValueError(
                "connection_args.device_type is required for the napalm driver: the napalm "
                f"driver name ({EXAMPLE_DRIVERS}, ...)"
            )
        napalm_driver_class(args.device_type)

    @classmethod
    def validate_request(cls, req: ExecutionRequest) -> None:
        super().validate_request(req)
        if req.dry_run and not req.is_config:
            raise ValueError("dry_run applies to a config (it shows the diff and discards it)")
        cls._check_commit_options(req)

    @classmethod
    def _check_commit_options(cls, req: ExecutionRequest) -> None:
        """``message`` and ``revert_in`` where the platform's napalm driver has them (a 422
        naming the platform otherwise: napalm itself would fail only at commit time)."""
        options = req.driver_args or {}
        platform = req.connection_args.device_type or ""
        given = [name for name in ("message", "revert_in") if options.get(name) is not None]
        if not given:
            return
        if not req.is_config or req.dry_run:
            raise ValueError(f"driver_args {', '.join(given)} apply to a config that is committed")
        if options.get("message") is not None and platform not in COMMIT_MESSAGE_PLATFORMS:
            raise ValueError(
                f"napalm {platform} takes no commit message (driver_args.message); "
                f"it works on {', '.join(sorted(COMMIT_MESSAGE_PLATFORMS))}"
            )
        revert_in = options.get("revert_in")
        if revert_in is not None and platform not in COMMIT_CONFIRM_PLATFORMS:
            raise ValueError(
                f"napalm {platform} has no commit-confirm (driver_args.revert_in); "
                f"it works on {', '.join(sorted(COMMIT_CONFIRM_PLATFORMS))}"
            )
        if revert_in is not None and platform in MINUTE_TIMERS and revert_in % 60:
            raise ValueError(
                f"napalm {platform} counts driver_args.revert_in in whole minutes: "
                "give a multiple of 60 seconds"
            )

    # --- session --------------------------------------------------------------------------

    @property
    def _extra(self) -> dict[str, Any]:
        """The connection options, checked (paths resolved) where the job runs."""
        checked = getattr(self, "_checked", None)
        if checked is None:
            options = self.connection_options_checked()
            checked = self._checked = _without_none(options)
        return checked

    @property
    def timeout(self) -> float:
        return float(self._extra.get("timeout", DEFAULT_TIMEOUT_S))

    @property
    def target(self) -> str:
        """``host:port`` with the port napalm's driver uses when none is given."""
        port = self.args.port
        if port is None:
            transport = self._extra.get("transport", "https")
            if self.args.device_type == "eos" and transport != "ssh":
                port = 80 if transport == "http" else 443
            elif self.args.device_type == "junos":
                port = 830  # NETCONF over SSH
            else:
                port = 22
        return f"{self.args.host}:{port}"

    def _optional_args(self) -> dict[str, Any]:
        """napalm's ``optional_args``: the extra connection fields, port and secret."""
        extra = dict(self._extra)
        extra.pop("timeout", None)
        optional = dict(extra.pop("optional_args", None) or {})
        for key, value in extra.items():
            optional.setdefault(key, value)
        if self.args.port:
            optional.setdefault("port", self.args.port)
        if self.args.secret:
            optional.setdefault("secret", self.args.secret)
            if self.args.device_type == "eos":
                optional.setdefault("enable_password", self.args.secret)
        return optional

    def connect(self) -> None:
        device_type = self.args.device_type
        if not device_type:
            raise DriverError(
                f"{self.target}: connection_args.device_type (the napalm driver name, "
                f"{EXAMPLE_DRIVERS}) is required"
            )
        try:
            driver_class = napalm_driver_class(device_type)
        except ValueError as exc:
            raise DriverError(f"{self.target}: {exc}") from None
        try:
            # The constructor validates optional_args (eos: the transport) and may raise too.
            device = driver_class(
                hostname=self.args.host,
                username=self.args.username or "",
                password=self.args.password or "",
                timeout=self.timeout,
                optional_args=self._optional_args(),
            )
            device.open()
        except Exception as exc:  # any failure to open is reported as a connection error
            raise open_error(exc, self.target, self.args.username, self.timeout) from None
        self.device = device

    def disconnect(self) -> None:
        device, self.device = self.device, None
        if device is None:
            return
        try:
            device.close()  # eos also discards a leftover config session here
        except Exception as exc:  # closing must not mask the job's outcome; say what failed
            log.warning("%s: napalm close() failed: %s: %s", self.target, type(exc).__name__, exc)

    def abort(self) -> None:
        """Close the transport under napalm so that a blocked call returns."""
        device = self.device
        if break_netmiko_session(getattr(device, "_netmiko_device", None)):
            return
        # eos over eAPI: the HTTP connection of the request in flight
        node = getattr(device, "device", None)
        transport = getattr(getattr(node, "connection", None), "transport", None)
        if transport is not None:
            transport.close()
        else:
            self.disconnect()

    def is_alive(self) -> bool:
        if self.device is None:
            return False
        try:
            return bool(self.device.is_alive().get("is_alive"))
        except Exception as exc:
            log.debug("%s: napalm is_alive() failed: %s", self.target, exc)
            return False

    def probe(self) -> dict[str, Any]:
        """The device's facts (hostname, vendor, model, os_version) from ``get_facts``."""
        info: dict[str, Any] = {"device_type": self.args.device_type}
        try:
            facts = self._session().get_facts()
        except NotImplementedError:
            info["facts_error"] = f"get_facts is not implemented by napalm {self.args.device_type}"
            return info
        except Exception as exc:
            self._raise_if_session_lost(exc, "get_facts")
            info["facts_error"] = f"{type(exc).__name__}: {exc}"
            return info
        for key in ("hostname", "vendor", "model", "os_version", "serial_number"):
            info[key] = facts.get(key)
        return info

    def _session(self) -> NetworkDriver:
        if self.device is None:
            raise DeviceConnectionError(f"{self.target}: the session is closed")
        return self.device

    def _raise_if_session_lost(self, exc: BaseException, what: str) -> None:
        error = session_error(exc, self.target, what, self.args.username, self.timeout)
        if error is not None:
            raise error from None

    # --- commands -------------------------------------------------------------------------

    def send(self, commands: list[str], req: ExecutionRequest) -> list[DriverExecutionResult]:
        results = []
        for command in commands:
            started = time.monotonic()
            name = command.strip()
            if GETTER.fullmatch(name):
                results.append(self._getter(name, started, req))
            else:
                results.append(self._cli(command, started, req))
        return results

    def _getter(self, name: str, started: float, req: ExecutionRequest) -> DriverExecutionResult:
        device = self._session()
        method = getattr(device, name, None)
        if not callable(method):
            getters = sorted(n for n in dir(device) if GETTER.fullmatch(n))
            return self._failed(
                name,
                started,
                f"napalm {self.args.device_type} has no getter {name!r}; "
                f"getters: {', '.join(getters)}",
            )
        options = self.driver_args_checked(req.driver_args)
        kwargs = (options.get("getter_args") or {}).get(name) or {}
        try:
            data = method(**kwargs)
        except NotImplementedError:
            return self._failed(
                name, started, f"{name} is not implemented by napalm {self.args.device_type}"
            )
        except Exception as exc:
            self._raise_if_session_lost(exc, name)
            return self._failed(name, started, f"{type(exc).__name__}: {exc}")
        # Round-trip through JSON so `parsed` holds only what the result store can keep.
        stdout = json.dumps(data, indent=2, default=str)
        item = self.result(name, started, stdout=stdout, getter=name)
        item.parsed = json.loads(stdout)
        return item

    def _cli(self, command: str, started: float, req: ExecutionRequest) -> DriverExecutionResult:
        encoding = self.driver_args_checked(req.driver_args).get("encoding")
        options = {"encoding": encoding} if encoding is not None else {}
        try:
            output = self._session().cli([command], **options).get(command, "")
        except NotImplementedError as exc:
            return self._failed(command, started, f"cli: {exc}")
        except Exception as exc:
            self._raise_if_session_lost(exc, repr(command))
            return self._failed(command, started, f"{type(exc).__name__}: {exc}")
        if not isinstance(output, str):  # eos with encoding json
            item = self.result(command, started, stdout=json.dumps(output, indent=2))
            item.parsed = output
            return item
        error = find_device_error(output)
        return self.result(
            command, started, stdout=output, stderr=error or "", exit_status=1 if error else 0
        )

    # --- config ---------------------------------------------------------------------------

    def send_config(self, lines: list[str], req: ExecutionRequest) -> list[DriverExecutionResult]:
        """Merge, diff, then commit, or discard for ``dry_run`` and for an empty diff."""
        device = self._session()
        started = time.monotonic()
        command = "\n".join(lines)
        flags: _ConfigFlags = {"dry_run": req.dry_run, "committed": False}
        try:
            device.load_merge_candidate(config=command + "\n")
        except Exception as exc:
            self._raise_if_session_lost(exc, "load_merge_candidate")
            reason = self._discard_after(f"the device refused the config: {exc}")
            return [self._failed(command, started, reason, **flags)]
        try:
            diff = device.compare_config()
        except Exception as exc:
            self._raise_if_session_lost(exc, "compare_config")
            reason = self._discard_after(f"compare_config failed: {type(exc).__name__}: {exc}")
            return [self._failed(command, started, reason, **flags)]
        flags["changed"] = bool(diff.strip())
        if req.dry_run or not flags["changed"]:
            try:
                device.discard_config()
            except Exception as exc:
                self._raise_if_session_lost(exc, "discard_config")
                return [
                    self._failed(
                        command,
                        started,
                        f"the candidate could not be discarded: {type(exc).__name__}: {exc}",
                        stdout=diff,
                        **flags,
                    )
                ]
            return [self.result(command, started, stdout=diff, **flags)]
        options = self.driver_args_checked(req.driver_args)
        commit: dict[str, Any] = {
            name: options[name] for name in ("message", "revert_in") if options.get(name)
        }
        try:
            device.commit_config(**commit)
        except Exception as exc:
            self._raise_if_session_lost(exc, "commit_config")
            reason = self._discard_after(f"commit failed: {type(exc).__name__}: {exc}")
            return [self._failed(command, started, reason, stdout=diff, **flags)]
        flags["committed"] = True
        if "message" in commit:
            flags["message"] = commit["message"]
        if "revert_in" in commit:
            # Reverted by the device unless confirmed in time (napalm confirm_commit).
            flags["revert_in"] = commit["revert_in"]
            flags["pending_confirm"] = True
        return [self.result(command, started, stdout=diff, **flags)]

    def _discard_after(self, reason: str) -> str:
        """Discard the candidate after a failure; the reason, plus the discard's own failure."""
        try:
            self._session().discard_config()
        except Exception as exc:
            self._raise_if_session_lost(exc, "discard_config")
            return f"{reason}; discarding the candidate failed too: {type(exc).__name__}: {exc}"
        return reason

    def _failed(
        self, command: str, started: float, reason: str, stdout: str = "", **metadata: Any
    ) -> DriverExecutionResult:
        return self.result(
            command, started, stdout=stdout, stderr=reason, exit_status=1, **metadata
        )


def _without_none(options: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _without_none(v) if isinstance(v, dict) else v
        for k, v in options.items()
        if v is not None
    }
