"""The paramiko driver: one ``exec`` channel per command, for Linux hosts.

Unlike a CLI scraper it gets the remote exit status and stderr, so success is not guessed.
The options (``options.py``, documented in docs/drivers.md) cover the login (keys as files
or text, a jump host, agent, compression, keepalive) and the shell (environment, working
directory, pseudo-terminal, sudo, answers to prompts, a script, stop on error). What the
shell runs is built in ``shell.py``; the login pieces are in ``login.py``.
"""

from __future__ import annotations

import io
import logging
import shlex
import time
from typing import Any

import paramiko

from netpulse.drivers import transfer
from netpulse.drivers.base import (
    BaseDriver,
    DeviceAuthenticationError,
    DeviceConnectionError,
    DeviceTimeoutError,
    send_keepalive,
)
from netpulse.drivers.transfer import Shell, TransferOutcome
from netpulse.models.job import DriverExecutionResult
from netpulse.models.request import ConnectionArgs, ExecutionRequest, FileTransfer
from netpulse.plugins.drivers.paramiko import login
from netpulse.plugins.drivers.paramiko.files import SftpFiles
from netpulse.plugins.drivers.paramiko.options import ConnectionOptions, DriverOptions
from netpulse.plugins.drivers.paramiko.shell import Outcome, run_on_channel, shell_command

log = logging.getLogger(__name__)

#: Where a script (``script_content``) is put on the host: a private file of ``mktemp``.
SCRIPT_TEMPLATE = "/tmp/netpulse-script.XXXXXXXXXX"


class ParamikoDriver(BaseDriver):
    driver_name = "paramiko"
    supports_file_transfer = True
    detachable = True
    pinnable = True
    connection_options = ConnectionOptions
    driver_options = DriverOptions

    #: The open session; None before :meth:`connect` and after :meth:`disconnect`.
    client: paramiko.SSHClient | None = None
    #: The jump host's session the target's runs through (``proxy_host``), if any.
    jump: paramiko.SSHClient | None = None

    @classmethod
    def validate_connection(cls, args: ConnectionArgs) -> None:
        if args.username is None:
            raise ValueError("connection_args.username is required for the paramiko driver")

    def connect(self) -> None:
        extra = {k: v for k, v in self.connection_options_checked().items() if v is not None}
        timeout = float(extra.get("timeout", 10))
        target = (self.args.host, self.port_of(self.args))
        sock = None
        if extra.get("proxy_host"):
            self.jump, sock = self._through_jump_host(extra, target, timeout)
        client = paramiko.SSHClient()
        client.load_system_host_keys()
        client.set_missing_host_key_policy(login.host_key_policy(extra))
        try:
            pkey = (
                login.private_key(extra["pkey"], extra.get("passphrase"), "pkey")
                if extra.get("pkey")
                else None
            )
            client.connect(
                hostname=target[0],
                port=target[1],
                username=self.args.username,
                password=self.args.password,
                pkey=pkey,
                key_filename=extra.get("key_filename"),
                passphrase=extra.get("passphrase"),
                timeout=timeout,
                auth_timeout=float(extra.get("auth_timeout", timeout)),
                banner_timeout=float(extra.get("banner_timeout", timeout)),
                look_for_keys=bool(extra.get("look_for_keys", False)),
                allow_agent=bool(extra.get("allow_agent", False)),
                compress=bool(extra.get("compress", False)),
                sock=sock,
            )
        except BaseException as exc:
            client.close()
            self._close_jump()
            raise self._login_failure(exc, self.target, self.args.username, timeout) from None
        transport = client.get_transport()
        if transport is not None and extra.get("keepalive"):
            transport.set_keepalive(int(extra["keepalive"]))
        self.client = client

    def _through_jump_host(
        self, extra: dict[str, Any], target: tuple[str, int], timeout: float
    ) -> tuple[paramiko.SSHClient, paramiko.Channel]:
        jump_name = f"jump host {extra['proxy_host']}:{extra.get('proxy_port') or 22}"
        user = extra.get("proxy_username") or self.args.username
        try:
            return login.open_jump(extra, target, self.args.username, timeout)
        except paramiko.ChannelException as exc:
            raise DeviceConnectionError(
                f"{jump_name} could not reach {self.target}: {exc.text or exc}"
            ) from None
        except BaseException as exc:
            raise self._login_failure(exc, jump_name, user, timeout) from None

    @staticmethod
    def _login_failure(
        exc: BaseException, who: str, username: str | None, timeout: float
    ) -> BaseException:
        """The driver error a failed login stands for, with a sentence naming ``who``."""
        if isinstance(exc, login.UnusableKey):
            return DeviceAuthenticationError(f"{who}: {exc}")
        if isinstance(exc, paramiko.AuthenticationException):
            return DeviceAuthenticationError(
                f"{who} refused the login for user {username!r}: {exc}"
            )
        if isinstance(exc, TimeoutError):
            return DeviceTimeoutError(f"{who} did not answer within {timeout:g} s: {exc}")
        if isinstance(exc, paramiko.BadHostKeyException):
            return DeviceConnectionError(f"{who}: host key mismatch: {exc}")
        if isinstance(exc, (OSError, paramiko.SSHException, EOFError)):
            return DeviceConnectionError(f"{who}: connection failed: {type(exc).__name__}: {exc}")
        return exc

    def _close_jump(self) -> None:
        jump, self.jump = self.jump, None
        if jump is not None:
            jump.close()

    def disconnect(self) -> None:
        client = self.client
        if client is not None:
            client.close()
            self.client = None
        self._close_jump()

    def send(self, commands: list[str], req: ExecutionRequest) -> list[DriverExecutionResult]:
        options = self.driver_args_checked(req.driver_args)
        if options.get("script_content"):
            return [self._run_script(options)]
        results: list[DriverExecutionResult] = []
        for index, command in enumerate(commands):
            started = time.monotonic()
            outcome = self._run(command, shell_command(command, options), options)
            results.append(
                self.result(command, started, outcome.stdout, outcome.stderr, outcome.status)
            )
            if outcome.status != 0 and options.get("stop_on_error"):
                for skipped in commands[index + 1 :]:
                    results.append(
                        self.result(
                            skipped,
                            time.monotonic(),
                            stderr=f"not run: {command!r} exited with {outcome.status}",
                            exit_status=-1,
                        )
                    )
                break
        return results

    def _transport(self) -> paramiko.Transport:
        client = self.client
        transport = client.get_transport() if client is not None else None
        if transport is None or not transport.is_active():
            raise DeviceConnectionError(f"{self.target}: the session is closed")
        return transport

    def _run(self, label: str, text: str, options: dict[str, Any]) -> Outcome:
        """Run ``text`` (what the shell gets for the step ``label``); driver errors for a
        timeout or a lost session."""
        timeout = options.get("timeout") or options.get("read_timeout")
        try:
            outcome = run_on_channel(
                self._transport(), text, options, float(timeout) if timeout else None
            )
        except TimeoutError:
            raise DeviceTimeoutError(
                f"{self.target}: {label!r} gave no output within {timeout} s"
            ) from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise DeviceConnectionError(
                f"{self.target}: session lost during {label!r}: {exc}"
            ) from None
        if outcome.status == -1:
            # The channel closed without an exit status: the connection died mid-command.
            raise DeviceConnectionError(
                f"{self.target}: session lost during {label!r} (no exit status)"
            )
        return outcome

    def _run_script(self, options: dict[str, Any]) -> DriverExecutionResult:
        """``script_content`` put in a private temporary file (``mktemp``: mode 0600), run
        with ``script_interpreter`` under the job's shell options, then removed whatever
        its outcome."""
        interpreter = options.get("script_interpreter") or "/bin/sh"
        label = f"script_content ({interpreter})"
        started = time.monotonic()
        # Making and removing the file need none of the job's shell options (the timeouts).
        plain = {k: v for k, v in options.items() if k in ("timeout", "read_timeout")}
        made = self._run(label, f"mktemp {SCRIPT_TEMPLATE}", plain)
        path = made.stdout.strip()
        if made.status != 0 or not path.startswith("/tmp/netpulse-script."):
            reason = made.stderr.strip() or "mktemp printed no path"
            return self.result(label, started, stderr=f"no temporary file: {reason}", exit_status=1)
        try:
            with self._sftp() as sftp:
                sftp.putfo(io.BytesIO(options["script_content"].encode()), path)
            command = f"{interpreter} {shlex.quote(path)}"
            outcome = self._run(label, shell_command(command, options), options)
        finally:
            self._remove_quietly(path, plain)
        return self.result(label, started, outcome.stdout, outcome.stderr, outcome.status)

    def _remove_quietly(self, path: str, options: dict[str, Any]) -> None:
        """Remove a file of ours; a failure is logged, never raised over the job's outcome."""
        try:
            self._run(f"rm {path}", f"rm -f {shlex.quote(path)}", options)
        except (DeviceConnectionError, DeviceTimeoutError) as exc:
            log.warning("%s: could not remove %s: %s", self.target, path, exc)

    def _sftp(self) -> paramiko.SFTPClient:
        client = self.client
        if client is None:
            raise DeviceConnectionError(f"{self.target}: the session is closed")
        try:
            return client.open_sftp()
        except (OSError, paramiko.SSHException) as exc:
            raise DeviceConnectionError(f"{self.target}: SFTP failed: {exc}") from None

    def transfer(self, spec: FileTransfer, data: bytes | None) -> TransferOutcome:
        """SFTP for the bytes, the host's shell for sizes, hashes, chmod and the command
        run after an upload (``netpulse.drivers.transfer`` does the rest)."""
        with self._sftp() as sftp:
            try:
                return transfer.perform(spec, SftpFiles(sftp, self._shell), self.result, data)
            except (paramiko.SSHException, EOFError) as exc:
                raise DeviceConnectionError(f"{self.target}: SFTP failed: {exc}") from None

    def remote_shell(self) -> Shell | None:
        return self._shell

    def _shell(self, command: str) -> tuple[str, str, int]:
        outcome = self._run(command, command, {})
        return outcome.stdout, outcome.stderr, outcome.status

    def abort(self) -> None:
        for client in (self.client, self.jump):
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
        if transport is None:
            return {"remote_version": None}
        # The compression both ways is negotiated together (we offer zlib only with compress).
        return {
            "remote_version": transport.remote_version,
            "compression": transport.local_compression,
        }
