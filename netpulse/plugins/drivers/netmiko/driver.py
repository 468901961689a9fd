"""The netmiko driver: `send_command` per command, `send_config_set` for config.

netmiko does not tell whether the device accepted a command, so the output is checked
against the error markers network CLIs print (``% Invalid input``, ``syntax error``...).
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from typing import TYPE_CHECKING, Any

from netmiko import ConnectHandler
from netmiko.exceptions import (
    NetmikoAuthenticationException,
    NetmikoTimeoutException,
    ReadException,
    ReadTimeout,
    WriteException,
)
from paramiko.ssh_exception import NoValidConnectionsError

from netpulse.drivers import transfer
from netpulse.drivers.base import (
    BaseDriver,
    DeviceAuthenticationError,
    DeviceConnectionError,
    DeviceTimeoutError,
    send_keepalive,
)
from netpulse.drivers.transfer import TransferOutcome
from netpulse.models.job import DriverExecutionResult
from netpulse.models.request import ConnectionArgs, ExecutionRequest, FileTransfer
from netpulse.plugins.drivers.interrupt import break_netmiko_session
from netpulse.plugins.drivers.netmiko.files import ScpFiles, linux_shell
from netpulse.plugins.drivers.netmiko.options import (
    REFUSED_DEVICE_SUFFIXES,
    ConnectionOptions,
    DriverOptions,
)

if TYPE_CHECKING:
    from netmiko.base_connection import BaseConnection

log = logging.getLogger(__name__)

#: Lines with which network operating systems say "I did not accept that".
ERROR_MARKERS = re.compile(
    r"^\s*(% ?(Invalid|Incomplete|Ambiguous|Unknown|Unrecognized|Bad|Error)\b.*"
    r"|syntax error.*|unknown command.*|Error: .*|invalid command.*|Command rejected.*)$",
    re.IGNORECASE | re.MULTILINE,
)


def find_device_error(output: str) -> str | None:
    """The first error line the device printed, or None when it printed none."""
    match = ERROR_MARKERS.search(output or "")
    return match.group(0).strip() if match else None


def _accepted_kwargs(func: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Keep only the options `func` accepts, so one `driver_args` serves several calls."""
    params = inspect.signature(func).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(options)
    return {k: v for k, v in options.items() if k in params}


class NetmikoDriver(BaseDriver):
    driver_name = "netmiko"
    supports_file_transfer = True
    pinnable = True
    default_strategy = "pinned"
    connection_options = ConnectionOptions
    driver_options = DriverOptions

    #: The open session; None before :meth:`connect` and after :meth:`disconnect`.
    conn: BaseConnection | None = None

    @classmethod
    def validate_connection(cls, args: ConnectionArgs) -> None:
        device_type = args.device_type
        if not device_type:
            raise ValueError(
                "connection_args.device_type is required for the netmiko driver "
                "(for example cisco_ios, arista_eos, juniper_junos, linux)"
            )
        _check_device_type(device_type)

    def _options(self, func: Any, driver_args: dict[str, Any]) -> dict[str, Any]:
        checked = self.driver_args_checked(driver_args)
        return _accepted_kwargs(func, {k: v for k, v in checked.items() if v is not None})

    @classmethod
    def validate_request(cls, req: ExecutionRequest) -> None:
        super().validate_request(req)
        device_type = req.connection_args.device_type or ""
        if req.file_transfer is not None and not device_type.startswith("linux"):
            needing = transfer.options_needing_a_shell(req.file_transfer)
            if needing:
                raise ValueError(
                    f"file_transfer {', '.join(needing)} need a shell on the device, which "
                    f"netmiko has for device_type linux only (not {device_type!r}); "
                    "use paramiko for Linux hosts"
                )

    def connect(self) -> None:
        try:
            _check_device_type(self.args.device_type or "")
        except ValueError as exc:
            raise DeviceConnectionError(f"{self.target}: {exc}") from None
        options = self.connection_options_checked()
        kwargs = {
            name: value
            for name, value in self.args.model_dump(exclude_none=True).items()
            if name in type(self.args).model_fields
        }
        kwargs.update({k: v for k, v in options.items() if v is not None})
        kwargs.setdefault("conn_timeout", 10)
        kwargs.setdefault("auth_timeout", 10)
        try:
            self.conn = ConnectHandler(**kwargs)
        except NetmikoAuthenticationException as exc:
            raise DeviceAuthenticationError(
                f"{self.target} refused the login for user {self.args.username!r}: "
                f"{_first_line(exc)}"
            ) from None
        except NetmikoTimeoutException as exc:
            # netmiko reports a refused TCP connection as a timeout; say which it was.
            cause = exc.__context__
            if isinstance(cause, (ConnectionRefusedError, NoValidConnectionsError)):
                raise DeviceConnectionError(
                    f"{self.target} refused the TCP connection (nothing listens there?)"
                ) from None
            raise DeviceTimeoutError(
                f"{self.target} could not be reached: {_first_line(exc)}"
            ) from None
        except (OSError, EOFError, ValueError) as exc:
            raise DeviceConnectionError(
                f"{self.target}: connection failed: {type(exc).__name__}: {_first_line(exc)}"
            ) from None

    def disconnect(self) -> None:
        conn = self.conn
        if conn is not None:
            try:
                conn.disconnect()
            except Exception as exc:  # closing a broken session must not mask the job's outcome
                log.debug("%s: disconnect failed: %s", self.target, exc)
            self.conn = None

    def _enter_enable(self, req: ExecutionRequest) -> BaseConnection:
        """The open session, in enable mode when the request asks for it."""
        conn = self.conn
        if conn is None:
            raise DeviceConnectionError(f"{self.target}: the session is closed")
        if req.enable_mode:
            try:
                conn.enable()
            except (ValueError, ReadTimeout) as exc:
                raise DeviceAuthenticationError(
                    f"{self.target}: enable mode refused: {_first_line(exc)}"
                ) from None
        return conn

    def send(self, commands: list[str], req: ExecutionRequest) -> list[DriverExecutionResult]:
        conn = self._enter_enable(req)
        options = self._options(conn.send_command, req.driver_args)
        results = []
        for command in commands:
            started = time.monotonic()
            try:
                output = conn.send_command(command, **options)
            except ReadTimeout as exc:
                raise DeviceTimeoutError(
                    f"{self.target}: no prompt after {command!r}: {_first_line(exc)}"
                ) from None
            except (OSError, ReadException, WriteException) as exc:
                raise DeviceConnectionError(
                    f"{self.target}: session lost during {command!r}: {exc}"
                ) from None
            output = output if isinstance(output, str) else str(output)
            error = find_device_error(output)
            results.append(
                self.result(
                    command,
                    started,
                    stdout=output,
                    stderr=error or "",
                    exit_status=1 if error else 0,
                )
            )
        return results

    def send_config(self, lines: list[str], req: ExecutionRequest) -> list[DriverExecutionResult]:
        """Push config one line at a time, with one result per line.

        The first line the device rejects stops the push: the lines after it are reported
        as not run (``exit_status`` -1). Only when every line was accepted does the push
        commit (platforms with a commit model, e.g. Junos, IOS XR) and then save (``save``).
        """
        conn = self._enter_enable(req)
        options = self._options(conn.send_config_set, req.driver_args)
        results: list[DriverExecutionResult] = []
        try:
            conn.config_mode()
            for index, line in enumerate(lines):
                started = time.monotonic()
                output = conn.send_config_set(
                    [line], enter_config_mode=False, exit_config_mode=False, **options
                )
                error = find_device_error(output)
                results.append(
                    self.result(
                        line,
                        started,
                        stdout=output,
                        stderr=error or "",
                        exit_status=1 if error else 0,
                    )
                )
                if error:
                    results += [
                        self.result(
                            rest,
                            time.monotonic(),
                            exit_status=-1,
                            stderr=f"not run: line {index + 1} was rejected",
                        )
                        for rest in lines[index + 1 :]
                    ]
                    break
            else:
                if _has_commit(conn):
                    started = time.monotonic()
                    results.append(self.result("commit", started, stdout=conn.commit()))
        except ReadTimeout as exc:
            raise DeviceTimeoutError(f"{self.target}: config push timed out: {exc}") from None
        except (OSError, ReadException, WriteException) as exc:
            raise DeviceConnectionError(
                f"{self.target}: session lost during the config push: {exc}"
            ) from None
        finally:
            if self.conn is not None and self.is_alive():
                self.conn.exit_config_mode()
        if req.save and all(r.exit_status == 0 for r in results):
            results.append(self._save(conn))
        return results

    def transfer(self, spec: FileTransfer, data: bytes | None) -> TransferOutcome:
        """SCP over the open session; on a Linux host its shell gives sizes, hashes, chmod
        and the command run after an upload (``netpulse.drivers.transfer``)."""
        conn = self.conn
        if conn is None:
            raise DeviceConnectionError(f"{self.target}: the session is closed")
        shell = linux_shell(conn) if (self.args.device_type or "").startswith("linux") else None
        try:
            return transfer.perform(spec, ScpFiles(conn, shell), self.result, data)
        except EOFError as exc:
            raise DeviceConnectionError(f"{self.target}: SCP failed: {exc}") from None

    def _save(self, conn: BaseConnection) -> DriverExecutionResult:
        started = time.monotonic()
        try:
            saved = conn.save_config()
        except NotImplementedError:
            return self.result(
                "save",
                started,
                stderr=f"{self.args.device_type} has no save command in netmiko",
                exit_status=1,
            )
        return self.result("save", started, stdout=str(saved))

    def _transport(self) -> Any:
        channel = getattr(getattr(self, "conn", None), "remote_conn", None)
        return getattr(channel, "transport", None)

    def abort(self) -> None:
        """Break the session so a read blocked in another thread returns now."""
        break_netmiko_session(getattr(self, "conn", None))

    def is_alive(self) -> bool:
        """Checked on the SSH transport: netmiko's own check writes into the CLI channel."""
        transport = self._transport()
        channel = getattr(getattr(self, "conn", None), "remote_conn", None)
        return bool(
            transport is not None and transport.is_active() and not getattr(channel, "closed", True)
        )

    def keepalive(self) -> None:
        send_keepalive(self._transport())

    def probe(self) -> dict[str, Any]:
        assert self.conn is not None  # probed right after a successful connect()
        return {
            "prompt": self.conn.find_prompt(),
            "device_type": self.args.device_type,
        }


def _check_device_type(device_type: str) -> None:
    if device_type.endswith(REFUSED_DEVICE_SUFFIXES):
        raise ValueError(
            f"connection_args.device_type {device_type!r} is not allowed by the netmiko "
            "driver: serial ports of the worker host are not available to jobs"
        )


def _has_commit(conn: Any) -> bool:
    """Whether the platform keeps a candidate config that must be committed."""
    from netmiko.base_connection import BaseConnection

    return type(conn).commit is not BaseConnection.commit


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
