"""A real Arista eAPI endpoint on loopback, for tests of the pyeapi and napalm (eos) drivers.

FakeNOS only speaks SSH; eAPI is JSON-RPC over HTTP(S) (``POST /command-api``, method
``runCmds``, basic auth), so the tests run this small server instead. It keeps enough EOS
state for what the drivers do: exec commands (``show version``, ``show hostname``,
``show interfaces``...), ``configure`` with config lines applied to the running config,
``write memory``, and the config sessions napalm's eos driver uses for merge, diff,
commit and discard (``configure session X``, ``show session-config named X diffs``,
``configure session X commit|abort``). Each request starts a fresh CLI session in exec
mode, as on a real switch; commands run in order and the first failure stops the request
with a JSON-RPC error (code 1002 for an invalid command) whose ``data`` holds the results
so far. Lines starting with ``bogus`` are rejected in every mode.

Listens on 127.0.0.1 only; ``tls=True`` serves HTTPS with a fresh self-signed certificate.
"""

from __future__ import annotations

import base64
import copy
import datetime
import difflib
import ipaddress
import json
import re
import ssl
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = ["EapiServer", "EosState"]

INVALID_COMMAND = 1002
NOT_JSON = 1003

#: Lines that open a config sub-mode; the lines after them belong to that section.
_SECTION = re.compile(
    r"^(interface|router|vlan|management|ip access-list|route-map|class-map|policy-map)\b"
)
#: Global lines that leave a section when typed inside one (EOS falls back to the parent).
_GLOBAL = re.compile(r"^(hostname|username|ip routing|ntp|logging|ip domain-name|snmp-server)\b")
#: Lines of which a config holds one: a new one replaces the old.
_SINGLE = re.compile(r"^(hostname|description|mtu|ip address|ip domain-name|switchport mode)\b")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client failing the TLS handshake is a test case, not a server error."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ssl.SSLError, ConnectionResetError)):
            super().handle_error(request, client_address)


class CommandError(Exception):
    """A command the simulated switch refuses: eAPI error ``code`` with ``detail``."""

    def __init__(self, code: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.reason, self.detail = code, reason, detail


Config = dict[str, list[str]]
"""Running config: each top-level line and its (indented) child lines, in order."""


def render(config: Config) -> list[str]:
    """The config as EOS prints it (three-space indent, ``!`` between sections)."""
    lines: list[str] = []
    for top, children in config.items():
        lines.append(top)
        lines.extend(f"   {child}" for child in children)
        if children or _SECTION.match(top):
            lines.append("!")
    return lines


def _put(lines: list[str], line: str) -> None:
    """Add ``line``, replacing a single-valued line of the same kind."""
    match = _SINGLE.match(line)
    if match:
        lines[:] = [old for old in lines if not old.startswith(match.group(1) + " ")]
    if line not in lines:
        lines.append(line)


def _put_top(config: Config, line: str) -> None:
    """Add a top-level line; a single-valued one (``hostname``) replaces the old in place."""
    match = _SINGLE.match(line)
    prefix = match.group(1) + " " if match else None
    rebuilt: Config = {}
    for top, children in config.items():
        if prefix and top.startswith(prefix):
            rebuilt.setdefault(line, [])
        else:
            rebuilt[top] = children
    rebuilt.setdefault(line, [])
    config.clear()
    config.update(rebuilt)


@dataclass
class EosState:
    """What the simulated switch remembers between requests."""

    hostname: str = "eos-lab"
    running: Config = field(default_factory=dict)
    startup: Config = field(default_factory=dict)
    rollback: Config = field(default_factory=dict)
    sessions: dict[str, Config] = field(default_factory=dict)
    #: Sessions committed with a timer (commit-confirm): name -> uptime it reverts at.
    pending_commits: dict[str, float] = field(default_factory=dict)
    booted_at: float = field(default_factory=lambda: time.time() - 3600)

    def __post_init__(self) -> None:
        if not self.running:
            self.running = {
                f"hostname {self.hostname}": [],
                "interface Ethernet1": [],
                "interface Ethernet2": [],
                "interface Management1": ["ip address 127.0.0.1/8"],
                "management api http-commands": ["no shutdown"],
            }
        self.startup = copy.deepcopy(self.running)

    @property
    def current_hostname(self) -> str:
        for line in self.running:
            if line.startswith("hostname "):
                return line.split(None, 1)[1]
        return "localhost"


class CliSession:
    """One eAPI request: a CLI session that starts in exec mode."""

    def __init__(self, state: EosState) -> None:
        self.state = state
        self.target: Config | None = None  # None: exec mode, else the config being edited
        self.section: str | None = None

    def run(self, command: str, fmt: str) -> dict[str, Any]:
        """Run one command; the result as eAPI returns it in ``fmt`` (json or text)."""
        line = command.strip()
        if line.startswith("bogus"):
            raise CommandError(
                INVALID_COMMAND, "invalid command", f"Invalid input (at token 0: '{line}')"
            )
        if self.target is not None:
            return self._config_line(line, fmt)
        reply = self._exec(line)
        if isinstance(reply, str):
            return {"output": reply + "\n" if reply else ""}
        if fmt == "text":
            return {"output": json.dumps(reply, indent=2) + "\n" if reply else ""}
        return reply

    # --- exec mode --------------------------------------------------------------------

    def _exec(self, line: str) -> dict[str, Any] | str:
        state = self.state
        if line in ("enable", "disable"):
            return {}
        if line in ("configure", "configure terminal"):
            self.target = state.running
            return {}
        if m := re.fullmatch(r"configure session (\S+)", line):
            self.target = state.sessions.setdefault(m.group(1), copy.deepcopy(state.running))
            return {}
        if m := re.fullmatch(r"configure session (\S+) commit timer (\d+):(\d\d):(\d\d)", line):
            name, hours, minutes, seconds = m.groups()
            if name not in state.sessions:
                raise CommandError(1000, "could not run command", f"Session {name} not found")
            state.running = state.sessions.pop(name)
            timer = int(hours) * 3600 + int(minutes) * 60 + int(seconds)
            state.pending_commits[name] = time.time() - state.booted_at + timer
            return {}
        if m := re.fullmatch(r"configure session (\S+) (commit|abort)", line):
            name, action = m.groups()
            if name not in state.sessions:
                raise CommandError(1000, "could not run command", f"Session {name} not found")
            candidate = state.sessions.pop(name)
            if action == "commit":
                state.running = candidate
            return {}
        if line in ("write", "write memory", "copy running-config startup-config"):
            state.startup = copy.deepcopy(state.running)
            return "Copy completed successfully."
        if line == "copy startup-config flash:rollback-0":
            state.rollback = copy.deepcopy(state.startup)
            return "Copy completed successfully."
        if m := re.fullmatch(r"show session-config named (\S+) diffs", line):
            return self._diff(m.group(1))
        if line in ("show running-config", "show running-config all"):
            return "\n".join([*render(state.running), "end"])
        if line == "show startup-config":
            return "\n".join([*render(state.startup), "end"])
        shows = {
            "show version": self._version,
            "show hostname": lambda: {
                "hostname": state.current_hostname,
                "fqdn": f"{state.current_hostname}.lab.example",
            },
            "show interfaces": self._interfaces,
            "show configuration sessions": self._sessions,
            "show configuration sessions detail": self._sessions,
        }
        if line in shows:
            return shows[line]()
        raise CommandError(
            INVALID_COMMAND, "invalid command", f"Invalid input (at token 1: '{line}')"
        )

    def _version(self) -> dict[str, Any]:
        return {
            "modelName": "vEOS-lab",
            "version": "4.30.1F",
            "internalVersion": "4.30.1F-32315456.4301F",
            "internalBuildId": "netpulse-test",
            "serialNumber": "NP-EAPI-0001",
            "systemMacAddress": "50:00:00:d7:ee:0b",
            "hardwareRevision": "",
            "architecture": "x86_64",
            "isIntlVersion": False,
            "memTotal": 2014424,
            "memFree": 1166488,
            "bootupTimestamp": self.state.booted_at,
            "uptime": time.time() - self.state.booted_at,
        }

    def _interfaces(self) -> dict[str, Any]:
        interfaces = {}
        for index, top in enumerate(t for t in self.state.running if t.startswith("interface ")):
            name = top.split(None, 1)[1]
            children = self.state.running[top]
            description = next(
                (c.split(None, 1)[1] for c in children if c.startswith("description ")), ""
            )
            down = "shutdown" in children
            interfaces[name] = {
                "name": name,
                "description": description,
                "interfaceStatus": "disabled" if down else "connected",
                "lineProtocolStatus": "down" if down else "up",
                "mtu": 1500,
                "bandwidth": 1_000_000_000,
                "physicalAddress": f"50:00:00:d7:ee:{index:02x}",
                "lastStatusChangeTimestamp": self.state.booted_at,
            }
        return {"interfaces": interfaces}

    def _sessions(self) -> dict[str, Any]:
        sessions: dict[str, Any] = {
            name: {"state": "pending", "completedTime": 0, "description": "", "instances": {}}
            for name in self.state.sessions
        }
        for name, commit_by in self.state.pending_commits.items():
            sessions[name] = {
                "state": "pendingCommitTimer",
                "commitBy": commit_by,
                "completedTime": 0,
                "description": "",
                "instances": {},
            }
        return {
            "sessions": sessions,
            "maxSavedSessions": 1,
            "maxOpenSessions": 5,
        }

    def _diff(self, name: str) -> str:
        if name not in self.state.sessions:
            raise CommandError(1000, "could not run command", f"Session {name} not found")
        diff = difflib.unified_diff(
            render(self.state.running),
            render(self.state.sessions[name]),
            "system:/running-config",
            f"session:/{name}-session-config",
            lineterm="",
        )
        return "\n".join(diff)

    # --- config mode ------------------------------------------------------------------

    def _config_line(self, line: str, fmt: str) -> dict[str, Any]:
        config = self.target
        assert config is not None
        if line == "end":
            self.target = self.section = None
        elif line == "exit":
            if self.section is None:
                self.target = None
            self.section = None
        elif line == "rollback clean-config":
            config.clear()
        elif line.startswith("no "):
            self._remove(config, line[3:].strip())
        elif _SECTION.match(line):
            config.setdefault(line, [])
            self.section = line
        elif self.section is None or _GLOBAL.match(line):
            self.section = None
            _put_top(config, line)
        else:
            _put(config[self.section], line)
        return {"output": ""} if fmt == "text" else {}

    def _remove(self, config: Config, line: str) -> None:
        if self.section is not None and not _SECTION.match(line):
            children = config[self.section]
            children[:] = [c for c in children if c != line and not c.startswith(line + " ")]
            return
        for top in [t for t in config if t == line or t.startswith(line + " ")]:
            del config[top]


class EapiServer:
    """The eAPI endpoint in a thread; a context manager.

    After :meth:`start`: ``host``, ``port``, ``transport`` (``http`` or ``https``),
    ``username``/``password``, ``state`` (an :class:`EosState`) and ``requests`` (the command
    lists received, in order).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        username: str = "admin",
        password: str = "admin",
        tls: bool = False,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the eAPI test server listens on loopback only, not {host!r}")
        self.host = host
        self.port = 0
        self.username = username
        self.password = password
        self.tls = tls
        self.state = EosState()
        self.requests: list[list[str]] = []
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._certdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def transport(self) -> str:
        return "https" if self.tls else "http"

    def connection_args(self, **overrides: Any) -> dict[str, Any]:
        """``connection_args`` of a NetPulse request for the pyeapi driver."""
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "transport": self.transport,
            **overrides,
        }

    def commands_received(self) -> list[str]:
        """Every command received, flattened (``enable`` included)."""
        with self._lock:
            return [cmd for request in self.requests for cmd in request]

    def start(self) -> Self:
        self._httpd = _Server((self.host, 0), self._handler_class())
        if self.tls:
            # The handshake runs in the request's thread, not in accept(): a client that
            # never speaks TLS must not stall the whole server.
            self._httpd.socket = self._tls_context().wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"eapi-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._certdir is not None:
            self._certdir.cleanup()
            self._certdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def run_request(self, body: dict[str, Any]) -> dict[str, Any]:
        """Answer one JSON-RPC request body (the HTTP layer only authenticates)."""
        reqid = body.get("id")
        params = body.get("params") or {}
        if body.get("method") != "runCmds":
            return _rpc_error(reqid, -32601, f"unknown method {body.get('method')!r}")
        fmt = params.get("format") or "json"
        if fmt not in ("json", "text"):
            return _rpc_error(reqid, -32602, f"invalid format {fmt!r}")
        cmds = [c["cmd"] if isinstance(c, dict) else str(c) for c in params.get("cmds", [])]
        with self._lock:
            self.requests.append(cmds)
            session = CliSession(self.state)
            results: list[dict[str, Any]] = []
            for index, cmd in enumerate(cmds):
                try:
                    results.append(session.run(cmd, fmt))
                except CommandError as exc:
                    message = f"CLI command {index + 1} of {len(cmds)} '{cmd}' failed: {exc.reason}"
                    return _rpc_error(
                        reqid, exc.code, message, [*results, {"errors": [exc.detail]}]
                    )
        return {"jsonrpc": "2.0", "id": reqid, "result": results}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.path != "/command-api":
                    self._send(404, {"error": f"no such path {self.path}"})
                elif self.headers.get("Authorization") != expected:
                    self._send(
                        401,
                        {"error": "Unable to authenticate user: Bad username/password combination"},
                    )
                else:
                    try:
                        body = json.loads(raw)
                    except ValueError as exc:
                        self._send(200, _rpc_error(None, -32700, f"parse error: {exc}"))
                        return
                    self._send(200, server.run_request(body))

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="eAPI"')
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _tls_context(self) -> ssl.SSLContext:
        """A server context with a fresh self-signed certificate for ``host``."""
        self._certdir = tempfile.TemporaryDirectory(prefix="netpulse-eapi-")
        cert, key = _self_signed(self.host, Path(self._certdir.name))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        return context


def _rpc_error(
    reqid: Any, code: int, message: str, data: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": reqid, "error": error}


def _self_signed(host: str, directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "eapi.crt", directory / "eapi.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
