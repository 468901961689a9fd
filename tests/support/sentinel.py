"""A real Redis Sentinel set on loopback for the tests: one master, one replica, three
``redis-sentinel`` processes, each on a free port, all data in one directory.

Failover is made quick (``down-after-milliseconds`` 1000), and every wait polls a real
condition (what the Sentinels and the data nodes report), never a fixed sleep. A test can
fail over gracefully (:meth:`SentinelSet.failover`, ``SENTINEL FAILOVER``) or kill the master
by PID (:meth:`SentinelSet.kill_master`) and then wait for the promotion
(:meth:`SentinelSet.wait_for_new_master`). :meth:`SentinelSet.stop` stops every process it
started, also after a failed start, and is what the context manager's exit calls.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from netpulse.runtime.ports import free_port
from netpulse.runtime.redis_server import RedisServer

__all__ = ["MASTER_NAME", "SentinelSet"]

log = logging.getLogger(__name__)

MASTER_NAME = "netpulse-test"
HOST = "127.0.0.1"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 4000
_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_LOG_TAIL_LINES = 30

T = TypeVar("T")
Address = tuple[str, int]


def _fast_client(port: int, password: str | None = None, **options: Any) -> redis.Redis:
    """A client that fails at once (no retries) with short timeouts: every probe here is
    repeated by a polling loop anyway, and redis-py's retries would make each one slow."""
    return redis.Redis(
        host=HOST,
        port=port,
        password=password,
        retry=Retry(NoBackoff(), 0),
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        decode_responses=True,
        **options,
    )


def _poll(
    what: str, probe: Callable[[], T | None], timeout: float, context: Callable[[], str]
) -> T:
    """Call ``probe`` until it returns something other than None (a Redis error counts as
    "not yet"); after ``timeout`` seconds fail with ``what``, the last error and ``context()``
    (the processes' log tails)."""
    deadline = time.monotonic() + timeout
    last: str = "no answer yet"
    while True:
        try:
            value = probe()
        except redis.RedisError as exc:
            value, last = None, f"{type(exc).__name__}: {exc}"
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what} ({last})\n{context()}"
            )
        time.sleep(0.05)


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
    except FileNotFoundError:
        lines = ["(missing)"]
    return f"--- {path} (last {_LOG_TAIL_LINES} lines)\n" + "\n".join(lines)


class DataNode(RedisServer):
    """A ``redis-server`` of the set (master or replica): :class:`RedisServer` with extra
    command-line options and a password, killable by PID."""

    def __init__(self, data_dir: Path, extra_args: list[str], password: str | None) -> None:
        super().__init__(data_dir=data_dir, appendonly=False, host=HOST)
        self._extra_args = extra_args
        self._password = password

    def _command(self, binary: str) -> list[str]:
        auth = ["--requirepass", self._password, "--masterauth", self._password]
        # No 5 s wait before a replica's first full sync (Redis' default): tests wait for it.
        quick_sync = ["--repl-diskless-sync-delay", "0"]
        return [
            *super()._command(binary),
            *quick_sync,
            *self._extra_args,
            *(auth if self._password else []),
        ]

    def _client(self, **timeouts: float) -> redis.Redis:
        # The base class probes and shuts down without a password; ours needs one.
        return redis.Redis(
            host=HOST,
            port=self.port,
            password=self._password,
            retry=Retry(NoBackoff(), 0),
            **timeouts,
        )

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"redis-server on port {self.port} is not running")
        return self._proc.pid

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown, no goodbye to replicas or Sentinels."""
        pid = self.pid
        os.kill(pid, signal.SIGKILL)
        self._kill()  # reaps the process (the signal was already sent)
        log.info("killed redis-server pid %d on port %s", pid, self.port)

    def client(self) -> redis.Redis:
        return _fast_client(self.port or 0, self._password)

    def log_tail(self) -> str:
        assert self.data_dir is not None
        return _tail(self.data_dir / "redis.log")


class SentinelProcess:
    """One ``redis-sentinel`` child watching the set's master."""

    def __init__(self, data_dir: Path, master_port: int, password: str | None) -> None:
        self.data_dir = data_dir
        self.port = free_port(HOST)
        self._master_port = master_port
        self._password = password
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _config(self) -> str:
        lines = [
            f"port {self.port}",
            f"bind {HOST}",
            "daemonize no",
            f"dir {self.data_dir}",
            f"logfile {self.data_dir / 'sentinel.log'}",
            "sentinel resolve-hostnames no",
            f"sentinel monitor {MASTER_NAME} {HOST} {self._master_port} 2",
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {MASTER_NAME} 1",
        ]
        if self._password:
            lines.append(f"sentinel auth-pass {MASTER_NAME} {self._password}")
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        binary = shutil.which("redis-sentinel")
        if binary is None:
            raise RuntimeError(
                "redis-sentinel not found on PATH; install the Debian package redis-sentinel "
                "(scripts/install.sh does)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "sentinel.conf"  # Sentinel rewrites it: one per process
        config.write_text(self._config())
        with open(self.data_dir / "sentinel.stderr", "wb") as stderr:
            self._proc = subprocess.Popen(
                [binary, str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

        def answers() -> bool | None:
            if self._proc is not None and self._proc.poll() is not None:
                raise AssertionError(
                    f"redis-sentinel on port {self.port} exited with code "
                    f"{self._proc.returncode}\n{self.log_tail()}"
                )
            with self.client() as client:
                # Our child, not another server that happened to take the port.
                return int(client.info("server")["process_id"]) == self.pid or None

        _poll(f"redis-sentinel on port {self.port}", answers, _READY_TIMEOUT_S, self.log_tail)

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"redis-sentinel on port {self.port} is not running")
        return self._proc.pid

    def client(self) -> redis.Redis:
        return _fast_client(self.port)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.warning("redis-sentinel pid %d ignored SIGTERM; killing it", proc.pid)
            proc.kill()
            proc.wait(timeout=_STOP_TIMEOUT_S)

    def log_tail(self) -> str:
        return "\n".join(
            _tail(self.data_dir / name) for name in ("sentinel.stderr", "sentinel.log")
        )


class SentinelSet:
    """One master, one replica and three Sentinels; a context manager.

    ``password`` protects the data nodes (``requirepass``/``masterauth``, and the Sentinels'
    ``auth-pass``); it is then part of :attr:`url`.
    """

    def __init__(self, root: Path, password: str | None = None, sentinels: int = 3) -> None:
        self.root = root
        self.password = password
        self._sentinel_count = sentinels
        self.nodes: list[DataNode] = []
        self.sentinels: list[SentinelProcess] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        try:
            master = DataNode(self.root / "node-0", [], self.password)
            self.nodes.append(master)
            master.start()
            replica = DataNode(
                self.root / "node-1", ["--replicaof", HOST, str(master.port)], self.password
            )
            self.nodes.append(replica)
            replica.start()

            def linked() -> bool | None:
                with replica.client() as client:
                    return client.info("replication").get("master_link_status") == "up" or None

            _poll("the replica's link to the master", linked, _READY_TIMEOUT_S, self.log_tails)
            for index in range(self._sentinel_count):
                assert master.port is not None
                sentinel = SentinelProcess(
                    self.root / f"sentinel-{index}", master.port, self.password
                )
                self.sentinels.append(sentinel)
                sentinel.start()
            self.wait_ready(master_port=master.port)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process, Sentinels first (so none starts a failover meanwhile); one
        that fails to stop does not keep the others running."""
        errors: list[BaseException] = []
        for process in [*self.sentinels, *self.nodes]:
            try:
                process.stop()
            except Exception as exc:  # stop the rest, then report
                log.exception("could not stop %r", process)
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what the clients use -----------------------------------------------------------------

    @property
    def sentinel_addresses(self) -> list[Address]:
        return [(HOST, s.port) for s in self.sentinels]

    @property
    def url(self) -> str:
        """``redis+sentinel://[:password@]127.0.0.1:p1,...,127.0.0.1:p3/<master name>/0``"""
        auth = f":{self.password}@" if self.password else ""
        hosts = ",".join(f"{h}:{p}" for h, p in self.sentinel_addresses)
        return f"redis+sentinel://{auth}{hosts}/{MASTER_NAME}/0"

    def node(self, address: Address) -> DataNode:
        for node in self.nodes:
            if node.port == address[1]:
                return node
        raise LookupError(f"no data node of the set listens on {address}")

    def client(self, address: Address) -> redis.Redis:
        """A plain client straight to one data node (to check where data really is)."""
        return self.node(address).client()

    # -- state --------------------------------------------------------------------------------

    def reported_master(self) -> Address | None:
        """The master address every running Sentinel reports, or None while they disagree."""
        answers = set()
        for sentinel in self.sentinels:
            if not sentinel.running:
                continue
            with sentinel.client() as client:
                address = client.sentinel_get_master_addr_by_name(MASTER_NAME)
            if not address:
                return None  # this Sentinel does not know the master (yet)
            answers.add((str(address[0]), int(address[1])))
        return answers.pop() if len(answers) == 1 else None

    def wait_ready(self, master_port: int | None = None, timeout: float = _READY_TIMEOUT_S) -> None:
        """Wait until every Sentinel sees the master up, the other Sentinels, and one replica
        that is linked: the state in which ``SENTINEL FAILOVER`` and a crash both promote."""
        others = self._sentinel_count - 1

        def ready() -> bool | None:
            for sentinel in self.sentinels:
                with sentinel.client() as client:
                    state = client.sentinel_master(MASTER_NAME)
                    replicas = client.sentinel_slaves(MASTER_NAME)
                if master_port is not None and int(state["port"]) != master_port:
                    return None
                if not state["is_master"] or state["is_sdown"] or state["is_odown"]:
                    return None
                if state["num-other-sentinels"] != others or state["num-slaves"] != 1:
                    return None
                if not any(
                    r["is_slave"]
                    and not r["is_sdown"]
                    and not r["is_disconnected"]
                    and r.get("master-link-status") == "ok"
                    for r in replicas
                ):
                    return None
            return True

        _poll(
            f"{self._sentinel_count} Sentinels to agree on the master and its replica",
            ready,
            timeout,
            self.log_tails,
        )

    # -- faults -------------------------------------------------------------------------------

    def failover(self, timeout: float = _READY_TIMEOUT_S) -> Address:
        """Ask a Sentinel for a graceful failover (``SENTINEL FAILOVER``); returns the old
        master's address. Retried while Sentinel answers that it cannot start one yet (no
        replica it considers good, a failover still in progress)."""
        old = _poll("the Sentinels to agree", self.reported_master, timeout, self.log_tails)

        def ask() -> bool | None:
            with self.sentinels[0].client() as client:
                try:
                    client.sentinel_failover(MASTER_NAME)
                except redis.ResponseError as exc:
                    if "NOGOODSLAVE" in str(exc) or "INPROG" in str(exc):
                        log.info("SENTINEL FAILOVER not possible yet: %s", exc)
                        return None
                    raise
            return True

        _poll("SENTINEL FAILOVER to be accepted", ask, timeout, self.log_tails)
        return old

    def kill_master(self) -> Address:
        """SIGKILL the current master by PID; returns its address."""
        old = _poll(
            "the Sentinels to agree", self.reported_master, _READY_TIMEOUT_S, self.log_tails
        )
        self.node(old).kill()
        return old

    def wait_for_new_master(self, old: Address, timeout: float = _READY_TIMEOUT_S) -> Address:
        """Wait until every running Sentinel reports a master other than ``old`` and that
        node says it is a master (role and writable); returns its address."""

        def promoted() -> Address | None:
            new = self.reported_master()
            if new is None or new == old:
                return None
            with self.client(new) as client:
                if client.info("replication").get("role") != "master":
                    return None
            return new

        return _poll(f"a master other than {old[0]}:{old[1]}", promoted, timeout, self.log_tails)

    def log_tails(self) -> str:
        parts = [node.log_tail() for node in self.nodes if node.data_dir is not None]
        parts += [sentinel.log_tail() for sentinel in self.sentinels]
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"<SentinelSet {self.root} sentinels on {[s.port for s in self.sentinels]}>"
