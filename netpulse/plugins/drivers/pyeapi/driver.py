"""The pyeapi driver: Arista eAPI (JSON-RPC over HTTP or HTTPS), structured output included.

eAPI runs a list of commands in one request and stops at the first one it rejects; the
error carries the outputs of the commands before it. The driver reports each command on
its own: the ones before the failure succeed, the rejected one has ``exit_status`` 1 and
the device's message, and the ones after it are sent again in a new request (show
commands), or reported as not run, ``exit_status`` -1 (config lines: a half-applied change
must not go on, and is not saved).

Connection options from ``connection_args`` (beside host/port/username/password, and
``secret`` as the enable password): ``transport`` (``https`` default, or ``http``),
``timeout`` (s, default 30), ``verify`` (check the switch's TLS certificate, default off as
switches ship self-signed ones), ``ca_file``, ``cert_file``/``key_file`` (client
certificate). ``driver_args.encoding``: ``json`` (default: ``parsed`` holds the structure)
or ``text`` (the CLI's text in ``stdout``).

pyeapi 1.0.x on Python 3.11: its ``https_certs`` transport calls ``ssl.SSLContext.wrap_socket``
unbound and fails with a TypeError, so client certificates go through an SSL context this
driver builds and hands to the plain ``https`` transport instead.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import ssl
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pyeapi
from pyeapi.eapilib import CommandError
from pyeapi.eapilib import ConnectionError as EapiConnectionError

from netpulse.drivers.base import (
    BaseDriver,
    DeviceAuthenticationError,
    DeviceConnectionError,
)
from netpulse.models.job import DriverExecutionResult
from netpulse.models.request import ConnectionArgs, ExecutionRequest
from netpulse.plugins.drivers.pyeapi.errors import eapi_connection_error
from netpulse.plugins.drivers.pyeapi.options import (
    TRANSPORTS,
    ConnectionOptions,
    DriverOptions,
)

log = logging.getLogger(__name__)

# pyeapi logs a full traceback at ERROR level for every unreachable switch; the job's own
# error already names the cause, so keep pyeapi's transport log for debugging only.
logging.getLogger("pyeapi.eapilib").setLevel(logging.CRITICAL)

DEFAULT_TIMEOUT_S = 30.0
#: The command `save` sends.
SAVE_COMMAND = "write memory"

T = TypeVar("T")


class PyeapiDriver(BaseDriver):
    driver_name = "pyeapi"
    default_port = 443
    connection_options = ConnectionOptions
    driver_options = DriverOptions

    node: pyeapi.client.Node | None = None
    version: dict[str, Any] | None = None
    version_error: str | None = None

    @classmethod
    def port_of(cls, args: ConnectionArgs) -> int:
        """eAPI's default port follows the transport: 443 for https (the default), 80 for http."""
        if args.port:
            return args.port
        return 80 if (args.model_extra or {}).get("transport", "https") == "http" else 443

    @classmethod
    def validate_connection(cls, args: ConnectionArgs) -> None:
        # transport and encoding are checked by the allowlists (options.py).
        if args.username is None:
            raise ValueError("connection_args.username is required for the pyeapi driver")

    # --- session --------------------------------------------------------------------------

    @property
    def _extra(self) -> dict[str, Any]:
        checked = getattr(self, "_checked", None)
        if checked is None:
            options = self.connection_options_checked()
            checked = self._checked = {k: v for k, v in options.items() if v is not None}
        return checked

    @property
    def transport(self) -> str:
        return str(self._extra.get("transport", "https"))

    @property
    def timeout(self) -> float:
        return float(self._extra.get("timeout", DEFAULT_TIMEOUT_S))

    def connect(self) -> None:
        """Build the eAPI client and send `show version`.

        eAPI is stateless HTTP: nothing reaches the switch until a request, so without this
        one a wrong password or a closed port would only show at the first command. Its
        answer is kept for :meth:`probe`.
        """
        if self.transport not in TRANSPORTS:
            raise DeviceConnectionError(
                f"{self.target}: unknown eAPI transport {self.transport!r}; "
                f"use one of {', '.join(TRANSPORTS)}"
            )
        connection = pyeapi.client.connect(
            transport=self.transport,
            host=self.args.host,
            port=self.args.port,
            username=self.args.username or "",
            password=self.args.password or "",
            timeout=self.timeout,
            context=self._tls_context() if self.transport == "https" else None,
        )
        self.node = pyeapi.client.Node(connection, enablepwd=self.args.secret)
        try:
            [self.version] = self._call(self._session().run_commands, ["show version"])
        except CommandError as exc:
            answered = len(exc.output or [])  # eAPI's outputs: enable's, then show version's
            message = _split_failure(exc, sent_before=1)[1]
            if answered == 1:  # pyeapi sends `enable` first: its password was refused
                self.node = None
                raise DeviceAuthenticationError(
                    f"{self.target}: enable refused: {message}"
                ) from None
            if answered == 0:  # the request as a whole was refused
                self.node = None
                raise DeviceConnectionError(f"{self.target}: eAPI refused: {message}") from None
            # Logged in, but this user may not run `show version`: probe() says so.
            self.version_error = message
        except DeviceConnectionError:
            self.node = None
            raise

    def _tls_context(self) -> ssl.SSLContext:
        """What pyeapi's own https setup cannot do on Python 3.11: verify or client certs."""
        extra = self._extra
        if _truthy(extra.get("verify", False)):
            context = ssl.create_default_context(cafile=extra.get("ca_file"))
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if extra.get("cert_file"):
            try:
                context.load_cert_chain(extra["cert_file"], extra.get("key_file"))
            except (OSError, ssl.SSLError) as exc:
                raise DeviceConnectionError(
                    f"{self.target}: cannot load the client certificate: {exc}"
                ) from None
        return context

    def disconnect(self) -> None:
        """Nothing stays open between eAPI requests; drop the client."""
        self.node = None

    def abort(self) -> None:
        """Close the socket of the request in flight, so the blocked call returns."""
        transport = getattr(getattr(self.node, "connection", None), "transport", None)
        if transport is not None:
            transport.close()

    def is_alive(self) -> bool:
        return self.node is not None

    def probe(self) -> dict[str, Any]:
        version = self.version or {}
        info = {
            "version": version.get("version"),
            "model": version.get("modelName"),
            "transport": self.transport,
        }
        if self.version_error:
            info["version_error"] = self.version_error
        return info

    def _session(self) -> pyeapi.client.Node:
        if self.node is None:
            raise DeviceConnectionError(f"{self.target}: the session is closed")
        return self.node

    def _call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one eAPI call; transport failures become NetPulse's connection errors.

        ``CommandError`` (the switch answered and rejected a command) is left to the caller.
        """
        try:
            return func(*args, **kwargs)
        except (EapiConnectionError, http.client.HTTPException, OSError) as exc:
            raise eapi_connection_error(
                exc, self.target, self.args.username, self.timeout
            ) from None

    # --- commands -------------------------------------------------------------------------

    def send(self, commands: list[str], req: ExecutionRequest) -> list[DriverExecutionResult]:
        encoding = str(self.driver_args_checked(req.driver_args).get("encoding") or "json")
        results: list[DriverExecutionResult] = []
        pending = list(commands)
        while pending:
            started = time.monotonic()
            try:
                replies = self._call(self._session().run_commands, pending, encoding=encoding)
            except CommandError as exc:
                done, message = _split_failure(exc, sent_before=1)
                for command, reply in zip(pending, done, strict=False):
                    results.append(self._ok(command, started, reply, encoding))
                failed = len(done)
                if failed >= len(pending):
                    failed = 0  # the error names no command: blame the first one left
                results.append(self._failed(pending[failed], started, exc, message))
                pending = pending[failed + 1 :]  # show commands: the rest still run
                continue
            results.extend(
                self._ok(command, started, reply, encoding)
                for command, reply in zip(pending, replies, strict=True)
            )
            pending = []
        return results

    def send_config(self, lines: list[str], req: ExecutionRequest) -> list[DriverExecutionResult]:
        started = time.monotonic()
        try:
            replies = self._call(self._session().config, lines)
        except CommandError as exc:
            # Sent: enable, configure terminal, the lines.
            done, message = _split_failure(exc, sent_before=2)
            results = [
                self._ok(line, started, reply, "json")
                for line, reply in zip(lines, done, strict=False)
            ]
            failed = min(len(done), len(lines) - 1)
            results.append(self._failed(lines[failed], started, exc, message))
            # Like the netmiko driver: lines after a rejected one are "not run" (-1), and
            # nothing is saved (a half-applied change must not become the startup config).
            results.extend(
                self.result(
                    line,
                    started,
                    stderr=f"not run: line {failed + 1} was rejected",
                    exit_status=-1,
                )
                for line in lines[failed + 1 :]
            )
            return results
        results = [
            self._ok(line, started, reply, "json")
            for line, reply in zip(lines, replies, strict=True)
        ]
        if req.save:
            results.append(self._save())
        return results

    def _save(self) -> DriverExecutionResult:
        started = time.monotonic()
        try:
            [reply] = self._call(self._session().run_commands, [SAVE_COMMAND], encoding="text")
        except CommandError as exc:
            return self._failed("save", started, exc, _split_failure(exc, sent_before=1)[1])
        return self.result(
            "save", started, stdout=str(reply.get("output", "")).strip(), sent=SAVE_COMMAND
        )

    def _ok(self, command: str, started: float, reply: Any, encoding: str) -> DriverExecutionResult:
        if encoding == "text":
            stdout = str(reply.get("output", "")) if isinstance(reply, dict) else str(reply)
            return self.result(command, started, stdout=stdout, encoding="text")
        item = self.result(
            command,
            started,
            stdout=json.dumps(reply, indent=2) if reply else "",
            encoding="json",
        )
        item.parsed = reply
        return item

    def _failed(
        self, command: str, started: float, exc: CommandError, message: str
    ) -> DriverExecutionResult:
        return self.result(
            command, started, stderr=message, exit_status=1, eapi_error_code=exc.error_code
        )


def _split_failure(exc: CommandError, sent_before: int) -> tuple[list[Any], str]:
    """The outputs of the commands that ran before the rejected one, and the device's reason.

    ``exc.output`` is eAPI's ``error.data``: one entry per command that ran, the rejected one
    last (``{"errors": [...]}``); the first ``sent_before`` entries answer the commands pyeapi
    put in front (``enable``, ``configure terminal``).
    """
    data = list(exc.output or [])
    done = data[sent_before:-1] if data else []
    return done, _command_error_text(exc, data[-1] if data else None)


def _command_error_text(exc: CommandError, last: Any = None) -> str:
    """``invalid command: Invalid input (at token 0: 'bogus')`` from an eAPI error."""
    text = str(exc.error_text or exc)
    match = re.search(r"failed: (.*)$", text)
    reason = match.group(1) if match else text
    errors = last.get("errors") if isinstance(last, dict) else None
    if errors:
        return f"{reason}: {'; '.join(str(e) for e in errors)}"
    return reason


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
