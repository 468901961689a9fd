"""Helpers for bench/sessions.py (issue 4, warm sessions): a fastsim fleet in a child process,
a worker node child, process memory readings and a job-end tracker.

Only loopback addresses are ever contacted. Everything started here is a ``bench.common.Child``
(own process group, stopped on exit, Ctrl-C and SIGTERM); every wait is bounded.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from redis import Redis

from bench.common import ROOT, Child, Stack, log, wait_until

# -- fastsim fleet ----------------------------------------------------------------------------


def _range_is_free(host: str, base: int, count: int) -> bool:
    socks = []
    try:
        for port in range(base, base + count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


class FastFleet:
    """``python -m netpulse.lab.fastsim`` in a child process (asyncssh, no artificial delay).

    Listens on its own loopback address (127.0.0.x, x random) and on ports below the kernel's
    ephemeral range, so neither the node's outgoing connections nor another engineer's fleet
    can take one of its ports.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.devices: list[dict[str, Any]] = []
        self.child: Child | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="netpulse-bench-fastsim-"))

    def __enter__(self) -> FastFleet:
        started = time.monotonic()
        rng = random.Random()
        for _ in range(20):
            host = f"127.0.{rng.randint(1, 250)}.{rng.randint(2, 250)}"
            base = rng.randrange(20000, 32000 - self.count)
            if _range_is_free(host, base, self.count):
                break
        else:
            raise RuntimeError("no free port range for the fastsim fleet")
        self.child = Child(
            "fastsim",
            [
                sys.executable,
                "-m",
                "netpulse.lab.fastsim",
                "--count",
                str(self.count),
                "--host",
                host,
                "--base-port",
                str(base),
            ],
            {**os.environ, "PYTHONPATH": str(ROOT)},
            self._dir / "fastsim.log",
            stdout_pipe=True,
        )
        self.devices = self.child.read_json_line(timeout=120)
        log(
            f"fastsim fleet up in {time.monotonic() - started:.1f} s: {len(self.devices)} devices "
            f"on {host}:{base}-{base + self.count - 1}"
        )
        return self

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    def __exit__(self, *exc: Any) -> None:
        if self.child is not None:
            self.child.stop(timeout=30)
            self.child = None
        shutil.rmtree(self._dir, ignore_errors=True)


# -- worker node ------------------------------------------------------------------------------


class Node:
    """``netpulse worker node`` as a child of the stack (same environment, log in its dir).

    ``env``: extra settings for this node only (e.g. ``NETPULSE_NODE__PROBE_INTERVAL``).
    """

    def __init__(
        self,
        stack: Stack,
        name: str,
        threads: int,
        capacity: int,
        env: dict[str, str] | None = None,
    ) -> None:
        self.stack, self.name, self.threads, self.capacity = stack, name, threads, capacity
        self.env = env or {}
        self.child: Child | None = None
        self.log_path: Path | None = None

    def __enter__(self) -> Node:
        from netpulse.nodes.directory import NodeDirectory

        started = time.monotonic()
        args = [
            "worker",
            "node",
            "--name",
            self.name,
            "--threads",
            str(self.threads),
            "--capacity",
            str(self.capacity),
        ]
        self.child = Child(
            f"node-{self.name}",
            [sys.executable, "-m", "netpulse", *args],
            {**self.stack.env, **self.env},
            self.stack.workdir / f"node-{self.name}.log",
        )
        self.log_path = self.child.log_path
        assert self.stack.redis is not None
        directory = NodeDirectory(self.stack.redis)
        wait_until(
            lambda: any(n.name == self.name and n.alive for n in directory.nodes()),
            60,
            f"node {self.name}",
        )
        # Its RQ threads register a moment after the heartbeat.
        from rq import Worker

        wait_until(
            lambda: (
                sum(
                    1
                    for w in Worker.all(connection=self.stack.redis)
                    if w.name.startswith(self.name + ".")
                )
                >= self.threads
            ),
            60,
            f"the {self.threads} job threads of node {self.name}",
        )
        log(
            f"node {self.name} up in {time.monotonic() - started:.1f} s "
            f"(--threads {self.threads} --capacity {self.capacity}"
            f"{', ' + str(self.env) if self.env else ''}), pid {self.pid}"
        )
        return self

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    def stop(self) -> float:
        """Stop the node (SIGTERM: it closes its sessions and hands over); return seconds."""
        started = time.monotonic()
        if self.child is not None:
            self.child.stop(timeout=60)
            self.child = None
        return time.monotonic() - started

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# -- process readings -------------------------------------------------------------------------


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """All descendant processes of ``pid`` (via /proc/<pid>/task/*/children)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                kids = Path(f"/proc/{current}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            for kid in kids:
                found.append(int(kid))
                todo.append(int(kid))
    return found


def memory(pid: int) -> dict[str, Any]:
    """VmRSS (now) and VmHWM (peak) of ``pid``, plus its descendants' VmRSS; in MiB."""
    kids = descendants(pid)
    try:
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        threads = 0
    rss = _status_kib(pid, "VmRSS")
    kids_rss = sum(_status_kib(k, "VmRSS") for k in kids)
    return {
        "rss_mib": rss / 1024,
        "hwm_mib": _status_kib(pid, "VmHWM") / 1024,
        "children": len(kids),
        "children_rss_mib": kids_rss / 1024,
        "total_mib": (rss + kids_rss) / 1024,
        "threads": threads,
    }


def open_tcp_connections(pid: int) -> int:
    """Sockets the process holds (a rough count of its open SSH sessions + Redis clients)."""
    count = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    count += 1
            except OSError:
                continue
    except OSError:
        pass
    return count


# -- waiting for many jobs --------------------------------------------------------------------


class JobEnds:
    """Job ids published on NetPulse's job-end channel (the workers publish every job's end).

    Subscribe *before* submitting; then :meth:`wait_for` the submitted ids (bounded). No
    polling of the API or of Redis while jobs run.
    """

    def __init__(self, conn: Redis) -> None:
        from netpulse.keys import JOB_DONE_CHANNEL

        self.pubsub = conn.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(JOB_DONE_CHANNEL)
        # Wait for the subscription to be confirmed before anything is submitted.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = self.pubsub.get_message(ignore_subscribe_messages=False, timeout=0.5)
            if msg and msg["type"] == "subscribe":
                break
        self.done: set[str] = set()

    def wait_for(self, ids: Iterable[str], timeout: float) -> float:
        """Block until every id has ended; return time.time() when the last one was seen."""
        wanted = set(ids)
        deadline = time.monotonic() + timeout
        last = time.time()
        while not wanted <= self.done:
            if time.monotonic() > deadline:
                missing = len(wanted - self.done)
                raise RuntimeError(f"{missing} job(s) still not ended after {timeout} s")
            msg = self.pubsub.get_message(timeout=0.5)
            if msg and msg["type"] == "message":
                self.done.add(msg["data"].decode())
                last = time.time()
        return last

    def close(self) -> None:
        self.pubsub.close()


def read_jobs(conn: Redis, ids: list[str]) -> list[dict[str, Any]]:
    """The jobs as the API shows them (same view code), read straight from Redis."""
    from rq.job import Job

    from netpulse.api.views import to_response

    out: list[dict[str, Any]] = []
    for start in range(0, len(ids), 200):
        for job in Job.fetch_many(ids[start : start + 200], connection=conn):
            if job is None:
                out.append({"status": "missing"})
                continue
            out.append(to_response(job).model_dump(mode="json"))
    return out


# -- how busy the machine is with other people's work ----------------------------------------


def _busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot (/proc/stat; idle and iowait excluded)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields]
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # user..steal minus idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


def _tree_cpu() -> dict[int, float]:
    from bench.common import cpu_seconds

    me = os.getpid()
    out = {pid: cpu_seconds(pid, children=True) for pid in descendants(me)}
    out[me] = cpu_seconds(me, children=True)
    return {pid: v for pid, v in out.items() if v == v}  # a process that just ended: nan


class LoadMeter:
    """CPU used during a window by this benchmark's processes and by everything else."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.busy0 = _busy_seconds()
        self.mine0 = _tree_cpu()
        self.load0 = os.getloadavg()[0]

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        busy = _busy_seconds() - self.busy0
        now = _tree_cpu()
        used = {pid: v - self.mine0.get(pid, 0.0) for pid, v in now.items()}
        mine = sum(used.values())
        # Split: the simulated devices, this benchmark's client, NetPulse's own processes.
        sim = client = 0.0
        for pid, seconds in used.items():
            if pid == os.getpid():
                client += seconds
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                cmdline = ""
            if "fastsim" in cmdline or "fleet_proc" in cmdline:
                sim += seconds
        cores = os.cpu_count() or 1
        return {
            "wall": wall,
            "netpulse_cpu": mine - sim - client,
            "sim_cpu": sim,
            "client_cpu": client,
            "mine_cores": mine / wall,
            "others_cores": max(busy - mine, 0.0) / wall,
            "busy_cores": busy / wall,
            "cores": cores,
            "loadavg_start": self.load0,
            "loadavg_end": os.getloadavg()[0],
        }


def describe_load(load: dict[str, float]) -> str:
    return (
        f"CPU busy {load['busy_cores']:.2f} of {load['cores']} cores, of which this benchmark "
        f"{load['mine_cores']:.2f} and other processes {load['others_cores']:.2f}; load average "
        f"{load['loadavg_start']:.1f} -> {load['loadavg_end']:.1f}"
    )
