"""Supervision and readiness: `netpulse up` restarts what dies, gives up on what keeps dying,
leaves no process behind however it ends, and says it is up only when jobs can run.

Every test runs real processes (a `netpulse up` of its own, on a free port with its own data
directory and private Redis, or a stack of its own) and kills them by PID. Whatever a test
saw running is killed at its end, also when it fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from redis import asyncio as aioredis

from netpulse.nodes.directory import NODES, alive_key, draining_key
from netpulse.runtime.ports import free_port
from netpulse.runtime.redis_server import RedisServer
from netpulse.webhooks.delivery.heartbeat import ServiceHeartbeat, live_services
from tests.integration.helpers import unreachable_job
from tests.support import processes, proctree
from tests.support.stack import API_KEY, Stack

ROOT = Path(__file__).resolve().parents[2]


def user_env(**extra: str) -> dict[str, str]:
    """The user's environment: no NetPulse settings from the test session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETPULSE_")}
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


class Up:
    """One `netpulse up`, its output read as it comes, and every process it ever started
    remembered (sampled from /proc), so the test can check them and kill what is left."""

    def __init__(self, root: Path, port: int | None = None, **env: str) -> None:
        self.port = port or free_port()
        self.data_dir = root / "data"
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.seen: set[int] = set()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "netpulse",
                "up",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--workers",
                "2",
            ],
            env=user_env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._reader.start()
        self._sampler.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def _sample(self) -> None:
        while not self._done.wait(0.3):
            self.tree()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def tree(self) -> set[int]:
        """The living descendants of `netpulse up` now (also remembered for clean-up)."""
        found = proctree.descendants(self.pid)
        self.seen |= found
        return found

    def wait_for(self, text: str, timeout: float = 90) -> None:
        processes.wait_until(
            lambda: text in self.output or self.process.poll() is not None,
            timeout,
            f"`netpulse up` to print {text!r}",
            interval=0.02,
        )
        assert text in self.output, self.output

    def wait_ready(self) -> None:
        self.wait_for("[ready]\n")

    def child(self, fragment: str, other_than: int | None = None) -> int:
        """The pid of the child of `netpulse up` whose command line has ``fragment``."""

        def find() -> int | None:
            for pid in proctree.children(self.pid):
                if fragment in proctree.cmdline(pid) and pid != other_than and proctree.alive(pid):
                    return pid
            return None

        return processes.wait_until(find, 60, f"a child running {fragment!r}")

    def client(self) -> httpx.Client:
        key = (self.data_dir / "api_key").read_text().strip()
        return httpx.Client(base_url=self.url, headers={"X-API-KEY": key}, timeout=90)

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.tree()
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            self._done.set()
            self._sampler.join(5)
            proctree.kill_all(self.seen)
            self._reader.join(5)


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Any]:
    started: list[Up] = []

    def start(**kwargs: Any) -> Up:
        up = Up(tmp_path / f"up{len(started)}", **kwargs)
        started.append(up)
        return up

    yield start
    for up in started:
        up.close()


def assert_ran_and_failed_to_connect(api: httpx.Client, job_id: str, port: int) -> dict[str, Any]:
    """The job ended on a worker that tried the device (not abandoned, not lost)."""
    job = api.get(f"/jobs/{job_id}", params={"wait": 60}).json()
    assert job["status"] == "failed", job
    error = job["result"]["error"]
    assert error["type"] not in ("worker_lost", "node_lost", "worker_killed"), job
    assert f"127.0.0.1:{port}" in error["message"], job
    return job


def wait_gone(pids: set[int], what: str, timeout: float = 60) -> None:
    processes.wait_until(
        lambda: not [p for p in pids if proctree.alive(p)],
        timeout,
        f"{what}: still alive {[(p, proctree.cmdline(p)) for p in pids if proctree.alive(p)]}",
        interval=0.1,
    )


# -- restarts and orphans ---------------------------------------------------------------------


def test_a_killed_fifo_pool_is_started_again_and_none_of_its_workers_remains(start_up: Any) -> None:
    up = start_up()
    up.wait_ready()
    pool = up.child("worker fifo")
    workers = processes.wait_until(
        lambda: len(w := proctree.descendants(pool)) >= 2 and w, 60, "the pool's two workers"
    )
    old = workers | {pool}

    os.kill(pool, signal.SIGKILL)

    wait_gone(old, "the killed pool's workers")
    up.wait_for(f"worker-fifo (pid {pool}) ended: killed by SIGKILL", timeout=10)
    up.wait_for("restarting in 1 s", timeout=10)
    new_pool = up.child("worker fifo", other_than=pool)
    processes.wait_until(
        lambda: len(proctree.descendants(new_pool)) >= 2, 60, "the new pool's workers"
    )
    port = free_port()
    with up.client() as api:
        processes.wait_until(
            lambda: api.get("/health/ready").status_code == 200, 60, "readiness again"
        )
        reply = api.post("/device/exec", json=unreachable_job(port, queue_strategy="fifo"))
        assert reply.status_code == 201, reply.text
        job = assert_ran_and_failed_to_connect(api, reply.json()["id"], port)
    # FIFO workers are named fifo.<pool id>.<n>, and a pool id holds the pool's pid.
    assert f"-{new_pool}-" in job["worker"], job
    assert up.process.poll() is None, up.output


def test_sigterm_to_up_stops_every_process_it_started(start_up: Any) -> None:
    up = start_up()
    up.wait_ready()
    pool = up.child("worker fifo")
    processes.wait_until(lambda: len(proctree.descendants(pool)) >= 2, 60, "the pool's workers")
    tree = up.tree()
    commands = [proctree.cmdline(p) for p in tree]
    for part in ("redis-server", "controller", "worker fifo", "worker node", "worker webhooks"):
        assert any(part in c for c in commands), commands

    up.process.send_signal(signal.SIGTERM)

    assert up.process.wait(timeout=90) == 0, up.output
    up.wait_for("stopped.", timeout=10)
    wait_gone(tree, "processes of a stopped `netpulse up`", timeout=10)


def test_children_and_fifo_workers_die_with_a_killed_up(start_up: Any) -> None:
    up = start_up()
    up.wait_ready()
    pool = up.child("worker fifo")
    workers = processes.wait_until(
        lambda: len(w := proctree.descendants(pool)) >= 2 and w, 60, "the pool's workers"
    )
    tree = up.tree()
    assert workers <= tree

    up.process.kill()  # SIGKILL: `netpulse up` cannot stop anything itself
    up.process.wait()

    wait_gone(tree, "the processes of a killed `netpulse up`", timeout=60)


def test_a_child_that_keeps_dying_makes_up_give_up_and_name_it(start_up: Any) -> None:
    # The controller cannot take its port (someone else listens there): a real crash loop
    # that only the controller meets.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = start_up(port=port, NETPULSE_SUPERVISOR__MAX_RESTARTS="2")
        up.wait_for("restarting in 1 s")
        tree = up.tree()
        code = up.process.wait(timeout=120)

    text = up.output
    assert code == 1, text
    assert "[ready]" not in text
    assert "controller (pid" in text and "restarting in 2 s" in text, text
    assert "it died 3 times" in text and "giving up" in text, text
    assert "stopped." in text
    assert "address already in use" in (up.data_dir / "controller.log").read_text().lower()
    wait_gone(tree | up.seen, "processes of a `netpulse up` that gave up", timeout=10)


# -- readiness --------------------------------------------------------------------------------


def ready_state(url: str) -> tuple[int, dict[str, Any]]:
    """``/health/ready`` without an API key: it is open, like ``/health``."""
    reply = httpx.get(url + "/health/ready", timeout=30)
    return reply.status_code, reply.json()


def wait_ready_state(url: str, expected: tuple[int, dict[str, Any]], timeout: float = 60) -> None:
    seen: list[Any] = []

    def matches() -> bool:
        try:
            state = ready_state(url)
        except httpx.HTTPError as exc:
            seen.append(repr(exc))
            return False
        seen.append(state)
        return state == expected

    try:
        processes.wait_until(matches, timeout, f"/health/ready to answer {expected}", interval=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last answers: {seen[-3:]}") from None


def test_ready_names_a_missing_node_until_one_is_registered(tmp_path: Path) -> None:
    stack = Stack(user_env(NETPULSE_SERVER__API_KEY=API_KEY), tmp_path / "stack", "ready-node")
    try:
        stack.start_redis()
        for name in ("controller", "fifo", "webhooks"):
            stack.start(name)
        processes.wait_until(lambda: processes.http_ready(stack.url), 60, "the controller")
        wait_ready_state(stack.url, (503, {"status": "not ready", "missing": ["node"]}))

        stack.start("node")
        wait_ready_state(stack.url, (200, {"status": "ready"}))

        # A draining node takes no new device: a pinned job could not run.
        stack.redis.set(draining_key("ready-node"), "1")
        assert ready_state(stack.url) == (503, {"status": "not ready", "missing": ["node"]})
        stack.redis.delete(draining_key("ready-node"))
        assert ready_state(stack.url) == (200, {"status": "ready"})

        # A delivery service that stops says so at once (no waiting for its heartbeat).
        processes.stop(stack.procs.pop("webhooks"))
        assert ready_state(stack.url) == (
            503,
            {"status": "not ready", "missing": ["webhook_delivery"]},
        )

        stack.redis_server.stop()
        status, body = ready_state(stack.url)
        assert status == 503, body
        assert body == {
            "status": "not ready",
            "missing": ["redis", "node", "fifo_workers", "webhook_delivery"],
        }
    finally:
        stack.stop()


def test_up_announces_ready_only_when_pinned_and_fifo_jobs_are_taken(
    start_up: Any, tmp_path: Path
) -> None:
    # The node of `netpulse up` ("local") cannot start while another live process holds its
    # name: a draining node of another host still beats. Everything else comes up meanwhile.
    with RedisServer(appendonly=False) as server:
        conn = Redis.from_url(server.url)
        other = {"capacity": 1, "hostname": "another-host", "pid": 1, "started_at": 0}
        conn.hset(NODES, "local", json.dumps({**other, "threads": 1, "instance": "other"}))
        conn.set(alive_key("local"), "other")
        conn.set(draining_key("local"), "1")
        up = start_up(NETPULSE_REDIS__URL=server.url, NETPULSE_SUPERVISOR__NODES="1")
        wait_ready_state(up.url, (503, {"status": "not ready", "missing": ["node"]}))
        port = free_port()
        with up.client() as api:
            refused = api.post("/device/exec", json=unreachable_job(port))
            assert refused.status_code == 503, refused.text  # what "[ready]" must not precede
            assert "[ready]" not in up.output, up.output

            conn.delete(alive_key("local"), draining_key("local"))  # the other node stops
            up.wait_ready()
            # Right after "[ready]", with no waiting: both kinds of job are taken and run.
            pinned = api.post("/device/exec", json=unreachable_job(port))
            fifo = api.post("/device/exec", json=unreachable_job(port, queue_strategy="fifo"))
            assert pinned.status_code == 201, pinned.text
            assert fifo.status_code == 201, fifo.text
            assert pinned.json()["queue"] == "NodeQ_local", pinned.text
            assert fifo.json()["queue"] == "FifoQ", fifo.text
            for created in (pinned, fifo):
                assert_ran_and_failed_to_connect(api, created.json()["id"], port)
        assert ready_state(up.url) == (200, {"status": "ready"})
        up.close()  # before its Redis goes


def test_up_starts_one_node_per_core_and_devices_spread_over_them(start_up: Any) -> None:
    up = start_up(NETPULSE_SUPERVISOR__NODES="2")
    up.wait_ready()
    with up.client() as api:
        processes.wait_until(
            lambda: (
                {w["name"] for w in api.get("/workers").json() if w.get("kind") == "node"}
                == {"local", "local-2"}
            ),
            60,
            "both nodes",
            interval=0.2,
        )
        ports = [free_port() for _ in range(6)]
        queues = [api.post("/device/exec", json=unreachable_job(p)).json()["queue"] for p in ports]
    # least_load puts new devices on the node holding fewer: both get some.
    assert set(queues) == {"NodeQ_local", "NodeQ_local-2"}, queues
    assert (up.data_dir / "worker-node-2.log").exists()


# -- the delivery service's heartbeat ---------------------------------------------------------


def test_the_delivery_heartbeat_lives_through_a_redis_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="netpulse.webhooks.delivery.heartbeat")
    with RedisServer(appendonly=False) as server:
        conn = Redis.from_url(server.url)

        async def scenario() -> None:
            redis = aioredis.Redis.from_url(server.url, socket_connect_timeout=1)
            heartbeat = ServiceHeartbeat(redis, instance="hb-test", interval=0.05, ttl=1)
            stop = asyncio.Event()
            task = asyncio.create_task(heartbeat.run(stop))

            async def until(predicate: Any, what: str, timeout: float = 20) -> None:
                deadline = asyncio.get_running_loop().time() + timeout
                while not await asyncio.to_thread(predicate):
                    assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
                    await asyncio.sleep(0.05)

            def count() -> int:
                try:
                    return live_services(conn)
                except Exception:
                    return -1

            await until(lambda: count() == 1, "the first beat")
            await asyncio.to_thread(server.stop)
            await until(lambda: "Redis is unreachable" in caplog.text, "the outage to be logged")
            # Many failed beats during the outage, one line.
            await asyncio.sleep(0.5)
            assert caplog.text.count("Redis is unreachable") == 1, caplog.text
            assert not task.done()
            await asyncio.to_thread(server.start)  # same port, empty: the set was lost
            await until(lambda: count() == 1, "the beat after the outage")
            assert "Redis answers again" in caplog.text
            stop.set()
            await asyncio.wait_for(task, 5)  # ends by itself, without a cancellation
            assert count() == 0
            await redis.aclose()

        asyncio.run(scenario())
