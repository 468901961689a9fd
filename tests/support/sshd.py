"""A real OpenSSH server on loopback, for tests of NetPulse's paramiko/netmiko ``linux`` path.

FakeNOS only imitates an SSH CLI; exit statuses, ``exec`` channels, key authentication and
a real login shell need the real thing. :class:`OpenSSHServer` runs ``/usr/sbin/sshd`` with
its own config on a free port of 127.0.0.1, for a dedicated local account, with a fresh
ed25519 host key and client key per server. It needs root (it creates the account and
writes into its home) and the Debian package ``openssh-server``.

Each server authorizes its client key in its own file (``~/.ssh/authorized_keys.netpulse-
<port>``) rather than ``authorized_keys``, so servers started in parallel do not replace
each other's key; the file is removed on stop.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from netpulse.runtime.ports import free_port

__all__ = ["OpenSSHServer"]

SSHD = "/usr/sbin/sshd"
DEFAULT_USER = "netpulse-test"
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0
_LOG_TAIL_LINES = 30


class OpenSSHServer:
    """``sshd -D`` as a child process; a context manager.

    After :meth:`start`: ``host``, ``port``, ``username``, ``key_filename`` (client private
    key, OpenSSH format) and ``host_public_key`` (for strict host key checking).
    """

    def __init__(
        self,
        username: str = DEFAULT_USER,
        host: str = "127.0.0.1",
        sshd: str = SSHD,
        *,
        password: str | None = None,
        netns: str | None = None,
    ) -> None:
        """``password``: the account's login password (for ``sudo``), none by default.
        ``netns``: run inside that network namespace (``host`` is an address there)."""
        self.username = username
        self.host = host
        self.password = password
        self.netns = netns
        self.port = 0
        self.key_filename = ""
        self.host_public_key = ""
        self._sshd = sshd
        self._workdir: Path | None = None
        self._authorized_keys: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """sshd's own log (``-E``): the place to look when a login fails."""
        if self._workdir is None:
            raise RuntimeError("OpenSSHServer not started")
        return self._workdir / "sshd.log"

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``paramiko.SSHClient.connect`` (key auth only)."""
        return {
            "hostname": self.host,
            "port": self.port,
            "username": self.username,
            "key_filename": self.key_filename,
            "look_for_keys": False,
            "allow_agent": False,
        }

    def start(self) -> Self:
        """Create the account and keys, check the config with ``sshd -t``, start, and wait
        until the server sends its SSH banner."""
        if self._proc is not None:
            raise RuntimeError("OpenSSHServer already started")
        _require_environment(self._sshd)
        account = _ensure_account(self.username, self.password)
        self._workdir = Path(tempfile.mkdtemp(prefix="netpulse-sshd-"))
        try:
            # Every port is free in a namespace of our own; the host's are checked here.
            self.port = free_port("127.0.0.1" if self.netns else self.host)
            self._write_keys(account)
            config = self._write_config()
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
            _run([self._sshd, "-t", "-f", str(config)], "sshd -t rejected the config")
            prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
            self._proc = subprocess.Popen(
                [*prefix, self._sshd, "-D", "-f", str(config), "-E", str(self.log_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            self._wait_for_banner()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop sshd and its per-connection children, remove keys and config. Idempotent."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                _terminate(proc)
        finally:
            if self._authorized_keys is not None:
                self._authorized_keys.unlink(missing_ok=True)
                self._authorized_keys = None
            if self._workdir is not None:
                shutil.rmtree(self._workdir)
                self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _write_keys(self, account: pwd.struct_passwd) -> None:
        assert self._workdir is not None
        host_key = Ed25519PrivateKey.generate()
        _write_private_key(host_key, self._workdir / "ssh_host_ed25519_key")
        self.host_public_key = _public_line(host_key)

        client_key = Ed25519PrivateKey.generate()
        client_path = self._workdir / "client_ed25519"
        _write_private_key(client_key, client_path)
        self.key_filename = str(client_path)

        # StrictModes: ~/.ssh 0700 and the key file 0600, both owned by the account.
        ssh_dir = Path(account.pw_dir) / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(ssh_dir, account.pw_uid, account.pw_gid)
        ssh_dir.chmod(0o700)
        self._authorized_keys = ssh_dir / f"authorized_keys.netpulse-{self.port}"
        self._authorized_keys.write_text(_public_line(client_key) + "\n")
        os.chown(self._authorized_keys, account.pw_uid, account.pw_gid)
        self._authorized_keys.chmod(0o600)

    def _write_config(self) -> Path:
        assert self._workdir is not None and self._authorized_keys is not None
        config = self._workdir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.host}",
                    f"HostKey {self._workdir / 'ssh_host_ed25519_key'}",
                    f"PidFile {self._workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile .ssh/{self._authorized_keys.name}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    f"AllowUsers {self.username}",
                    "PermitRootLogin no",
                    "StrictModes yes",
                    "PrintMotd no",
                    "PrintLastLog no",
                    "X11Forwarding no",
                    "LogLevel VERBOSE",
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        return config

    def authorize(self, public_line: str) -> None:
        """Accept one more client key (an OpenSSH public key line) for the account."""
        assert self._authorized_keys is not None, "start the server first"
        with self._authorized_keys.open("a") as keys:
            keys.write(public_line.strip() + "\n")

    def _wait_for_banner(self) -> None:
        """Poll until a TCP connection gets an ``SSH-2.0-`` banner, or fail with the log.
        In a namespace (where this process cannot connect), until sshd logs that it
        listens."""
        assert self._proc is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(self._failure(f"sshd exited with code {self._proc.returncode}"))
            if self.netns:
                with contextlib.suppress(FileNotFoundError):
                    if "Server listening on" in self.log_path.read_text(errors="replace"):
                        return
                last_error = "sshd has not logged 'Server listening on'"
                time.sleep(0.02)
                continue
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                    banner = sock.makefile("rb").readline(256)
                if banner.startswith(b"SSH-2.0-"):
                    return
                last_error = f"unexpected banner {banner!r}"
            except OSError as exc:
                last_error = str(exc)
            time.sleep(0.02)
        raise RuntimeError(
            self._failure(f"no SSH banner within {_START_TIMEOUT_S:.0f} s ({last_error})")
        )

    def _failure(self, what: str) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
        except FileNotFoundError:
            lines = ["(no log file)"]
        return f"{what} ({self.host}:{self.port}); {self.log_path}:\n" + "\n".join(lines)


def _require_environment(sshd: str) -> None:
    if not os.path.exists(sshd):
        raise RuntimeError(
            f"{sshd} not found: install the Debian package openssh-server "
            "(apt-get install -y openssh-server)"
        )
    if os.geteuid() != 0:
        raise RuntimeError("OpenSSHServer needs root: it creates a local account and runs sshd")


def _ensure_account(username: str, password: str | None = None) -> pwd.struct_passwd:
    """Return the account, creating it if missing: unlocked but password-less ('*'), since
    sshd without PAM refuses locked ('!') accounts even for key logins; or with
    ``password`` (servers of one account must all give the same one)."""
    try:
        account = pwd.getpwnam(username)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/sh", username],
            capture_output=True,
            text=True,
            check=False,
        )
        try:  # a parallel test run may have created it first
            account = pwd.getpwnam(username)
        except KeyError:
            raise RuntimeError(f"useradd {username} failed: {result.stderr.strip()}") from None
    if password is None:
        _run(["usermod", "-p", "*", username], f"could not unlock account {username}")
    else:
        result = subprocess.run(
            ["chpasswd"], input=f"{username}:{password}\n", capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"chpasswd for {username} failed: {result.stderr.strip()}")
    Path(account.pw_dir).mkdir(mode=0o755, exist_ok=True)
    os.chown(account.pw_dir, account.pw_uid, account.pw_gid)
    return account


def _write_private_key(key: Ed25519PrivateKey, path: Path) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _public_line(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stderr + result.stdout).strip()
        raise RuntimeError(f"{what}: {' '.join(argv)} exited {result.returncode}: {output}")


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM sshd and the per-connection processes it forked (they run in their own
    sessions and would outlive it while a client stays connected), then reap sshd."""
    children = _child_pids(proc.pid)
    if proc.poll() is None:
        proc.terminate()
    for pid in children:
        with contextlib.suppress(ProcessLookupError):  # that connection already ended
            os.kill(pid, signal.SIGTERM)
    try:
        proc.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=_STOP_TIMEOUT_S)
        raise RuntimeError(f"sshd (pid {proc.pid}) ignored SIGTERM and was killed") from None


def _child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]
