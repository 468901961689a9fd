"""The contract every device driver plugin fulfils.

A driver opens a session to one device, runs commands or pushes config, and closes. The worker
decides when (per job, or kept warm); the driver only states what is particular to its library.
Failures to reach or log in to a device raise :class:`DeviceConnectionError` (the job fails);
a command the device rejects comes back as a result with ``exit_status != 0`` (the job
finishes, and says which command failed).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from netpulse.drivers import options, transfer
from netpulse.drivers.transfer import RemoteFiles, Shell, TransferOutcome
from netpulse.models.job import DriverExecutionResult, JobErrorType
from netpulse.models.request import ConnectionArgs, ExecutionRequest, FileTransfer, QueueStrategy


class DriverError(Exception):
    """A job-level failure of a driver; ``error_type`` goes into ``result.error.type``."""

    error_type: ClassVar[JobErrorType] = JobErrorType.DRIVER_ERROR


class DeviceConnectionError(DriverError):
    """The device could not be reached, refused the login, or timed out."""

    error_type = JobErrorType.CONNECTION


class DeviceAuthenticationError(DeviceConnectionError):
    error_type = JobErrorType.AUTHENTICATION


class DeviceTimeoutError(DeviceConnectionError):
    error_type = JobErrorType.TIMEOUT


def send_keepalive(transport: Any) -> None:
    """An SSH-level keepalive the server may ignore: ``keepalive@openssh.com``.

    Not ``Transport.send_ignore()``: paramiko sends SSH_MSG_IGNORE without the length its
    data field needs, and strict servers (asyncssh) drop the connection for it.
    """
    if transport is not None and transport.is_active():
        transport.global_request("keepalive@openssh.com", wait=False)


def logged_in_as(args: ConnectionArgs, credential: object | None) -> ConnectionArgs:
    """``args`` as a driver's login check sees them: with a ``credential``, the login
    fields it will fill when the job runs count as given."""
    if credential is None or args.username:
        return args
    return args.model_copy(update={"username": "(from the credential)"})


class BaseDriver(ABC):
    """One session to one device."""

    driver_name: ClassVar[str] = ""
    #: The port a request without ``port`` reaches (part of the device key).
    default_port: ClassVar[int] = 22
    #: Whether a session can be kept warm on a worker node (``queue_strategy: pinned``).
    pinnable: ClassVar[bool] = False
    #: The strategy of a request that names none (the contract: pinned for netmiko).
    default_strategy: ClassVar[QueueStrategy] = "fifo"
    #: Whether :meth:`transfer` is implemented (checked when a job is submitted).
    supports_file_transfer: ClassVar[bool] = False
    #: Whether :meth:`remote_shell` gives a POSIX shell, so ``detach: true`` can start a
    #: detached task (checked when a job is submitted).
    detachable: ClassVar[bool] = False
    #: The allowlists (``netpulse.drivers.options``): the ``connection_args`` beside
    #: host, device_type, username, password, port and secret, and the ``driver_args``, this
    #: driver passes to its library. Anything else is refused at submission.
    connection_options: ClassVar[type[options.Options]] = options.NoOptions
    driver_options: ClassVar[type[options.Options]] = options.NoOptions

    def __init__(self, connection_args: ConnectionArgs, driver_args: dict[str, Any] | None = None):
        self.args = connection_args
        self.driver_args = dict(driver_args or {})
        self.session_reused = False

    def remote_shell(self) -> Shell | None:
        """A POSIX shell on the connected device, ``(stdout, stderr, exit status)`` per
        command (detached tasks are started and followed through it); None when the
        driver has none. Drivers that give one set :attr:`detachable`."""
        return None

    @property
    def target(self) -> str:
        """The device as logs and errors name it (never credentials)."""
        return self.device_key(self.args)

    @classmethod
    def device_key(cls, args: ConnectionArgs) -> str:
        """``host:port`` of the device a request reaches: the one key of a device.

        Jobs are ordered and capped per device (vty lines) by this key and warm sessions are
        placed by it, so two spellings of the same device (with and without the default
        port) must give the same key.
        """
        return f"{args.host}:{cls.port_of(args)}"

    @classmethod
    def port_of(cls, args: ConnectionArgs) -> int:
        """The port the driver connects to: the request's, or the driver's default."""
        return args.port or cls.default_port

    @classmethod
    def validate_connection(cls, args: ConnectionArgs) -> None:
        """What the driver needs to log in (e.g. a device type); ``ValueError`` says what is
        missing. Checked when a job is submitted and before a connection test. The base
        driver needs nothing beyond the host the request model already requires."""
        return None

    @classmethod
    def validate_request(cls, req: ExecutionRequest) -> None:
        """Whether this driver can run the request; ``ValueError`` says why not.

        The connection first; drivers with request-level rules (napalm's ``dry_run``)
        extend this.
        """
        cls.validate_connection(logged_in_as(req.connection_args, req.credential))
        spec = req.file_transfer
        if spec is not None and spec.local_path is not None:
            try:
                options.confined_path(spec.local_path)
            except ValueError as exc:
                raise ValueError(f"file_transfer.local_path {exc}") from None

    @classmethod
    def check_connection_args(cls, connection_args: Any) -> dict[str, Any]:
        """The connection options, checked against the allowlist; ``ValueError`` names any
        option refused (``connection_args`` is a ``ConnectionArgs`` or a mapping)."""
        extras = options.connection_extras(connection_args)
        return options.check(cls.driver_name, "connection_args", cls.connection_options, extras)

    @classmethod
    def check_driver_args(cls, driver_args: dict[str, Any]) -> dict[str, Any]:
        """``driver_args`` checked against the allowlist; ``ValueError`` names any refused."""
        return options.check(cls.driver_name, "driver_args", cls.driver_options, driver_args)

    def connection_options_checked(self) -> dict[str, Any]:
        """The connection options as validated where the job runs (paths resolved).

        Checked again here, not only at submission: the worker may be another host, and a
        job queued by an older controller was never checked.
        """
        try:
            return self.check_connection_args(self.args)
        except ValueError as exc:
            raise DriverError(str(exc)) from None

    def driver_args_checked(self, driver_args: dict[str, Any]) -> dict[str, Any]:
        """``driver_args`` as validated where the job runs."""
        try:
            return self.check_driver_args(driver_args)
        except ValueError as exc:
            raise DriverError(str(exc)) from None

    @abstractmethod
    def connect(self) -> None:
        """Open the session; raise DeviceConnectionError (or a subclass) naming the cause."""

    @abstractmethod
    def disconnect(self) -> None:
        """Close the session; never raises."""

    @abstractmethod
    def send(self, commands: list[str], req: ExecutionRequest) -> list[DriverExecutionResult]:
        """Run each command and report each one's output and exit status."""

    def send_config(self, lines: list[str], req: ExecutionRequest) -> list[DriverExecutionResult]:
        """Push config lines. Drivers without a config mode treat them as commands."""
        return self.send(lines, req)

    def abort(self) -> None:
        """Break the session from another thread, so a blocked call returns (stop requests).

        Unlike :meth:`disconnect` it must not wait for the device or for locks the running
        call holds.
        """
        self.disconnect()

    def is_alive(self) -> bool:
        """Whether the open session still answers (checked before a warm session is reused)."""
        return False

    def keepalive(self) -> None:
        """Keep an idle session from being closed by the device (called by the pool's probe)."""
        return None

    def remote_files(self) -> RemoteFiles:
        """The open session's file primitives (read, write, shell), for :meth:`transfer`."""
        raise DriverError(f"the {self.driver_name} driver cannot transfer files")

    def transfer(self, spec: FileTransfer, data: bytes | None) -> TransferOutcome:
        """Run the ``file_transfer``: ``data`` is an upload's file (None otherwise). The
        options are built once for every driver (``netpulse.drivers.transfer``)."""
        return transfer.perform(spec, self.remote_files(), self.result, data)

    def probe(self) -> dict[str, Any]:
        """What `POST /device/test` reports after a successful connect (prompt, version...)."""
        return {}

    def execute(self, req: ExecutionRequest) -> list[DriverExecutionResult]:
        """Run the request's payload on an open session."""
        lines = req.lines()
        if req.is_config:
            return self.send_config(lines, req)
        return self.send(lines, req)

    def result(
        self,
        command: str,
        started: float,
        stdout: str = "",
        stderr: str = "",
        exit_status: int = 0,
        **metadata: Any,
    ) -> DriverExecutionResult:
        """A result with the metadata every driver reports."""
        return DriverExecutionResult(
            command=command,
            stdout=stdout,
            stderr=stderr,
            exit_status=exit_status,
            metadata={
                "host": self.args.host,
                "driver": self.driver_name,
                "duration_seconds": round(time.monotonic() - started, 6),
                "session_reused": self.session_reused,
                **metadata,
            },
        )
