"""A private ``redis-server`` process on loopback, for ``netpulse lab`` and the tests.

NetPulse queues jobs in Redis. Development and tests start their own server on a free
port, so nothing depends on (or disturbs) a Redis already running on the machine, and
durability can be checked for real: with ``appendonly`` on and the same ``data_dir``, a
restarted server still has the data.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self, TypedDict, Unpack

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from netpulse.runtime.lifeline import preexec_die_with_parent
from netpulse.runtime.ports import free_port

__all__ = ["RedisServer"]

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0
_LOG_TAIL_LINES = 20
_NOT_FOUND = (
    "redis-server not found on PATH; install the Debian package redis-server "
    "or set NETPULSE_REDIS__URL"
)


class _Timeouts(TypedDict, total=False):
    """The socket timeouts :meth:`RedisServer._client` passes on to ``redis.Redis``."""

    socket_timeout: float
    socket_connect_timeout: float


class RedisServer:
    """One ``redis-server`` child process; a context manager.

    ``data_dir=None`` uses a temporary directory, removed by :meth:`stop`. ``port=None``
    picks a free port once; it is then kept across restarts so the URL stays valid.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int | None = None,
        appendonly: bool = True,
        host: str = "127.0.0.1",
        die_with_parent: bool = False,
    ) -> None:
        self._data_dir = Path(data_dir) if data_dir is not None else None
        #: ``netpulse up``'s private server must not outlive it, even when it is killed.
        self._die_with_parent = die_with_parent
        self._port = port
        self._appendonly = appendonly
        self._host = host
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://host:port/0``; valid once :meth:`start` has chosen the port."""
        if self._port is None:
            raise RuntimeError("RedisServer has no port yet: call start() first")
        return f"redis://{self._host}:{self._port}/0"

    @property
    def port(self) -> int | None:
        """The TCP port, or None before the first :meth:`start` when none was given."""
        return self._port

    @property
    def data_dir(self) -> Path | None:
        """Where the append-only file and ``redis.log`` live (None before start)."""
        return self._data_dir

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        """Start the server, wait until it answers PING, and return its URL."""
        if self._proc is not None:
            raise RuntimeError("RedisServer already started")
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(_NOT_FOUND)
        if self._data_dir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="netpulse-redis-")
            self._data_dir = Path(self._tempdir.name)
        self._data_dir.mkdir(parents=True, exist_ok=True)
        if self._port is None:
            self._port = free_port(self._host)
        # Startup errors (bad option, unusable dir) go to stderr before the log file is
        # open; a file, unlike a pipe, cannot fill up and block the server.
        with open(self._data_dir / "redis.stderr", "wb") as stderr:
            self._proc = subprocess.Popen(
                self._command(binary),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                preexec_fn=preexec_die_with_parent() if self._die_with_parent else None,
            )
        try:
            self._wait_ready()
        except BaseException:
            self._kill()
            self._cleanup_tempdir()
            raise
        return self.url

    def stop(self) -> None:
        """Shut down without saving an RDB snapshot (the AOF is already written) and wait.

        Falls back to SIGTERM, then SIGKILL, if SHUTDOWN is not answered. Idempotent.
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                self._shutdown(proc)
        finally:
            self._cleanup_tempdir()

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

    def _command(self, binary: str) -> list[str]:
        assert self._data_dir is not None and self._port is not None
        return [
            binary,
            "--port", str(self._port),
            "--bind", self._host,
            "--save", "",
            "--appendonly", "yes" if self._appendonly else "no",
            "--dir", str(self._data_dir),
            "--logfile", str(self._data_dir / "redis.log"),
            "--daemonize", "no",
        ]  # fmt: skip

    def _wait_ready(self) -> None:
        """Poll PING until it answers: the process exists well before it accepts clients
        (and a durable server first replays its append-only file)."""
        assert self._proc is not None
        client = self._client(socket_connect_timeout=0.5, socket_timeout=1.0)
        deadline = time.monotonic() + _START_TIMEOUT_S
        last_error: Exception | None = None
        try:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    raise RuntimeError(self._failure(f"exited with code {self._proc.returncode}"))
                try:
                    if client.ping():
                        self._check_identity(client)
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
                    last_error = exc
                time.sleep(0.02)
        finally:
            client.close()
        raise RuntimeError(
            self._failure(f"did not answer PING within {_START_TIMEOUT_S:.0f} s ({last_error})")
        )

    def _client(self, **timeouts: Unpack[_Timeouts]) -> redis.Redis:
        """A client that fails fast: redis-py's default retries with backoff would turn
        each probe of a not-yet-listening (or just stopped) server into seconds."""
        assert self._port is not None  # only called once start() has chosen the port
        return redis.Redis(
            host=self._host, port=self._port, retry=Retry(NoBackoff(), 0), **timeouts
        )

    def _check_identity(self, client: redis.Redis) -> None:
        """Make sure the server answering is our child, not another Redis on the port
        (ours then fails to bind and exits, while PING still succeeds)."""
        assert self._proc is not None
        pid = int(client.info("server")["process_id"])
        if pid != self._proc.pid:
            raise RuntimeError(
                self._failure(f"could not take the port: another Redis (pid {pid}) answers there")
            )

    def _shutdown(self, proc: subprocess.Popen[bytes]) -> None:
        client = self._client(socket_timeout=2.0)
        try:
            # redis-py treats the connection closing under it as success.
            client.shutdown(nosave=True)
        except redis.RedisError as exc:
            log.warning(
                "redis-server on port %s refused SHUTDOWN (%s); sending SIGTERM", self._port, exc
            )
            proc.terminate()
        finally:
            client.close()
        try:
            proc.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=_STOP_TIMEOUT_S)
            raise RuntimeError(
                f"redis-server on port {self._port} ignored SHUTDOWN for "
                f"{_STOP_TIMEOUT_S:.0f} s and was killed"
            ) from None

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=_STOP_TIMEOUT_S)

    def _failure(self, what: str) -> str:
        """Build a start-failure message with stderr and the log tail (why it failed)."""
        data_dir = self._data_dir or Path()
        parts = [f"redis-server on {self._host}:{self._port} {what}"]
        for name in ("redis.stderr", "redis.log"):
            path = data_dir / name
            try:
                lines = path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
            except FileNotFoundError:
                lines = ["(missing)"]
            if lines:
                parts.append(f"{path} (last {_LOG_TAIL_LINES} lines):\n" + "\n".join(lines))
        return "\n".join(parts)

    def _cleanup_tempdir(self) -> None:
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
            self._data_dir = None
