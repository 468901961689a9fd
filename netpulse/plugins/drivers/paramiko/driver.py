"""The paramiko driver: one `exec_command` channel per command.

Unlike a CLI scraper it gets the remote exit status and stderr, so success is not guessed.
Connection options (beside host/port/username/password) come from ``connection_args``:
``key_filename``, ``passphrase``, ``timeout`` (connect), ``host_key_policy``
(``auto_add`` default, ``reject`` to require a known host key).
"""

from __future__ import annotations

import io
import shlex
import time
from typing import Any

import paramiko

from netpulse.drivers import checksums
from netpulse.drivers.base import (
    BaseDriver,
    DeviceAuthenticationError,
    DeviceConnectionError,
    DeviceTimeoutError,
    send_keepalive,
)
from netpulse.models.job import DriverExecutionResult
from netpulse.models.request import ConnectionArgs, ExecutionRequest
from netpulse.plugins.drivers.paramiko.options import ConnectionOptions, DriverOptions


def shell_command(command: str, options: dict[str, Any]) -> str:
    """``command`` as the remote shell runs it: the exported ``environment`` and the
    ``working_directory`` first (a directory that does not exist fails the command, with
    the shell's reason). Values are shell-quoted; names are checked identifiers."""
    steps = []
    environment = options.get("environment") or {}
    if environment:
        steps.append("export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in environment.items()))
    if options.get("working_directory"):
        steps.append("cd " + shlex.quote(str(options["working_directory"])))
    if not steps:
        return command
    # A brace group, so that `;`, `||` or a pipe in the command cannot slip past the steps.
    return " && ".join(steps) + " && {\n" + command + "\n}"


class ParamikoDriver(BaseDriver):
    driver_name = "paramiko"
    supports_file_transfer = True
    pinnable = True
    connection_options = ConnectionOptions
    driver_options = DriverOptions

    #: The open session; None before :meth:`connect` and after :meth:`disconnect`.
    client: paramiko.SSHClient | None = None

    @classmethod
    def validate_connection(cls, args: ConnectionArgs) -> None:
        if args.username is None:
            raise ValueError("connection_args.username is required for the paramiko driver")

    def connect(self) -> None:
        extra = {k: v for k, v in self.connection_options_checked().items() if v is not None}
        client = paramiko.SSHClient()
        client.load_system_host_keys()
        policy = extra.get("host_key_policy", "auto_add")
        client.set_missing_host_key_policy(
            paramiko.RejectPolicy() if policy == "reject" else paramiko.AutoAddPolicy()
        )
        timeout = float(extra.get("timeout", 10))
        try:
            client.connect(
                hostname=self.args.host,
                port=self.port_of(self.args),
                username=self.args.username,
                password=self.args.password,
                key_filename=extra.get("key_filename"),
                passphrase=extra.get("passphrase"),
                timeout=timeout,
                auth_timeout=timeout,
                banner_timeout=timeout,
                look_for_keys=bool(extra.get("look_for_keys", False)),
                allow_agent=False,
            )
        except paramiko.AuthenticationException as exc:
            raise DeviceAuthenticationError(
                f"{self.target} refused the login for user {self.args.username!r}: {exc}"
            ) from None
        except TimeoutError as exc:
            raise DeviceTimeoutError(
                f"{self.target} did not answer within {timeout:g} s: {exc}"
            ) from None
        except paramiko.BadHostKeyException as exc:
            raise DeviceConnectionError(f"{self.target}: host key mismatch: {exc}") from None
        except (OSError, paramiko.SSHException) as exc:
            raise DeviceConnectionError(
                f"{self.target}: connection failed: {type(exc).__name__}: {exc}"
            ) from None
        self.client = client

    def disconnect(self) -> None:
        client = self.client
        if client is not None:
            client.close()
            self.client = None

    def send(self, commands: list[str], req: ExecutionRequest) -> list[DriverExecutionResult]:
        client = self.client
        if client is None:
            raise DeviceConnectionError(f"{self.target}: the session is closed")
        options = self.driver_args_checked(req.driver_args)
        timeout = options.get("timeout") or options.get("read_timeout")
        results: list[DriverExecutionResult] = []
        for index, command in enumerate(commands):
            started = time.monotonic()
            try:
                _, stdout, stderr = client.exec_command(
                    shell_command(command, options),
                    timeout=float(timeout) if timeout else None,
                    get_pty=bool(options.get("get_pty")),
                )
                out = stdout.read().decode(errors="replace")
                err = stderr.read().decode(errors="replace")
                status = stdout.channel.recv_exit_status()
            except TimeoutError:
                raise DeviceTimeoutError(
                    f"{self.target}: {command!r} gave no output within {timeout} s"
                ) from None
            except (OSError, paramiko.SSHException) as exc:
                raise DeviceConnectionError(
                    f"{self.target}: session lost during {command!r}: {exc}"
                ) from None
            if status == -1:
                # The channel closed without an exit status: the connection died mid-command.
                raise DeviceConnectionError(
                    f"{self.target}: session lost during {command!r} (no exit status)"
                )
            results.append(self.result(command, started, out, err, status))
            if status != 0 and options.get("stop_on_error"):
                for skipped in commands[index + 1 :]:
                    results.append(
                        self.result(
                            skipped,
                            time.monotonic(),
                            stderr=f"not run: {command!r} exited with {status}",
                            exit_status=-1,
                        )
                    )
                break
        return results

    def transfer(
        self, req: ExecutionRequest, data: bytes | None
    ) -> tuple[DriverExecutionResult, bytes | None]:
        """SFTP upload or download, then compare SHA-256 with the host's ``sha256sum``."""
        spec = req.file_transfer
        assert spec is not None
        started = time.monotonic()
        label = f"{spec.operation} {spec.remote_path}"
        client = self.client
        if client is None:
            raise DeviceConnectionError(f"{self.target}: the session is closed")
        try:
            with client.open_sftp() as sftp:
                if spec.operation == "upload":
                    sftp.putfo(io.BytesIO(data or b""), spec.remote_path, confirm=True)
                    payload = data or b""
                else:
                    buffer = io.BytesIO()
                    sftp.getfo(spec.remote_path, buffer)
                    payload = buffer.getvalue()
        except OSError as exc:  # no such file, permission denied...
            reason = exc.strerror or str(exc) or type(exc).__name__
            failed = self.result(
                label, started, stderr=f"{spec.remote_path}: {reason}", exit_status=1
            )
            return failed, None
        except paramiko.SSHException as exc:
            raise DeviceConnectionError(f"{self.target}: SFTP failed: {exc}") from None
        remote = self._remote_sha256(client, spec.remote_path) if spec.verify else None
        return self.transfer_outcome(req, started, payload, remote)

    def _remote_sha256(self, client: paramiko.SSHClient, path: str) -> str | None:
        _, stdout, _ = client.exec_command(checksums.remote_sha256_command(path))
        output = stdout.read().decode(errors="replace")
        return checksums.parse_sha256(output) if stdout.channel.recv_exit_status() == 0 else None

    def abort(self) -> None:
        client = self.client
        transport = client.get_transport() if client is not None else None
        if transport is not None:
            transport.close()

    def is_alive(self) -> bool:
        client = self.client
        transport = client.get_transport() if client is not None else None
        return bool(transport is not None and transport.is_active())

    def keepalive(self) -> None:
        client = self.client
        send_keepalive(client.get_transport() if client is not None else None)

    def probe(self) -> dict[str, Any]:
        assert self.client is not None  # probed right after a successful connect()
        transport = self.client.get_transport()
        return {"remote_version": transport.remote_version if transport else None}
