"""A whole NetPulse of a test's own: a private redis-server (append-only) and the processes
(controller, FIFO pool, a worker node, the delivery service), each killable by PID.

Fault tests restart Redis and kill processes, so they cannot share the session's system.
Given ``redis_url`` (e.g. a Sentinel set's ``redis+sentinel://`` URL), the stack starts no
Redis of its own and runs every process against that one; the test owns that Redis.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

from netpulse.nodes.directory import NodeDirectory
from netpulse.runtime.ports import free_port
from netpulse.runtime.redis_conn import connect
from netpulse.runtime.redis_server import RedisServer
from netpulse.worker.pool_directory import PoolDirectory
from tests.support import processes

API_KEY = "test-api-key-0123456789"


class Stack:
    def __init__(
        self,
        base_env: dict[str, str],
        root: Path,
        node_name: str = "fault-node",
        appendonly: bool = True,
        redis_url: str | None = None,
    ) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        #: None with an external ``redis_url``: the stack then neither starts nor stops Redis.
        self.redis_server = (
            None if redis_url else RedisServer(data_dir=root / "redis", appendonly=appendonly)
        )
        self.redis_url = redis_url
        self.base_env = base_env
        self.node_name = node_name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env: dict[str, str] = {}

    # -- lifecycle ----------------------------------------------------------------------------

    def start_redis(self) -> None:
        if self.redis_server is not None:
            self.redis_url = self.redis_server.start()
        assert self.redis_url is not None
        self.env = {
            **self.base_env,
            "NETPULSE_REDIS__URL": self.redis_url,
            "NETPULSE_DATA_DIR": str(self.root),
            # Where driver options naming a file may point: the test SSH servers' keys.
            "NETPULSE_DRIVERS__FILES_DIR": self.base_env.get(
                "NETPULSE_DRIVERS__FILES_DIR", str(Path(tempfile.gettempdir()).resolve())
            ),
        }

    @property
    def redis(self) -> Redis:
        assert self.redis_url is not None
        return connect(self.redis_url)

    def start(self, name: str) -> subprocess.Popen[bytes]:
        args = {
            "controller": ["controller", "--host", "127.0.0.1", "--port", str(self.port)],
            "fifo": ["worker", "fifo", "--size", "2"],
            "node": ["worker", "node", "--name", self.node_name, "--threads", "4"],
            "webhooks": ["worker", "webhooks"],
        }[name]
        process = processes.start(args, self.env, self.log(name))
        self.procs[name] = process
        return process

    def log(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def start_all(self) -> None:
        self.start_redis()
        for name in ("controller", "fifo", "node", "webhooks"):
            self.start(name)
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        conn = self.redis
        processes.wait_until(lambda: processes.http_ready(self.url), timeout, "the controller")
        processes.wait_until(
            lambda: any(n.name == self.node_name and n.alive for n in NodeDirectory(conn).nodes()),
            timeout,
            "the node",
        )
        processes.wait_until(lambda: PoolDirectory(conn).live_pools(), timeout, "the FIFO pool")

    def stop(self) -> None:
        for process in self.procs.values():
            processes.stop(process)
            # Whatever a test killed, nothing of the process's group may outlive the test.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        if self.redis_server is not None:
            self.redis_server.stop()

    def __enter__(self) -> Stack:
        self.start_all()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- the API ------------------------------------------------------------------------------

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-KEY": API_KEY}, timeout=90)

    def log_text(self, name: str) -> str:
        return self.log(name).read_text(errors="replace")
