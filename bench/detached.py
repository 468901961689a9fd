"""Detached tasks (issue 14): many tasks on many OpenSSH hosts, their logs pushed in byte ranges.

    cd /work/main && .venv/bin/python bench/detached.py [--tasks 100] [--hosts 10]
        [--seconds 60] [--push-interval 5] [--workers 4] [--no-write]
    # quick smoke run:
    cd /work/main && .venv/bin/python bench/detached.py --tasks 10 --hosts 2 --seconds 10 --no-write

The target (issue 14): 100 detached tasks over 10 OpenSSH hosts, each printing a line per
second for 60 s, with ``push_interval: 5``: every log byte delivered exactly in order by byte
range (gaps 0), each task exactly one final event; the follower's CPU per task-poll and the
Redis calls per push reported.

Setup, all on 127.0.0.0/8: ``--hosts`` real OpenSSH servers (tests/support/sshd.py, one on
each of 127.0.0.1, 127.0.0.2, ...; needs root), a private stack (bench/common.py: redis,
controller, ``--workers`` FIFO workers, the webhook delivery service) plus the follower
(``netpulse worker detached``, started here with the stack's environment: the Stack does not
start it), and a receiver that keeps every request's body (tests/support/receiver.py, a
threaded HTTP server in this process: bench/receiver.py records no bodies, and the rate here
is a few dozen events per second).

Run: after an idle window of 10 s (the follower's and the stack's background Redis commands
and CPU), the ``--tasks`` jobs (``detach: true``, paramiko, key login) are submitted in one
burst, task ``N`` on host ``N mod --hosts``, each running
``i=0; while [ $i -lt SECONDS ]; do echo "task N line $i"; i=$((i+1)); sleep 1; done`` and
webhooking to the receiver. Launch time = submission (client clock before the POST) to the
job's ``ended_at``. Then the script waits until every task's final event arrived and its
pushes cover its whole log, and a grace period for late duplicates.

Checks, per task: the ``detached.log_push`` events, de-duplicated on ``webhook-id``, sorted by
``offset``, must tile ``[0, len(expected))`` with no gap and no overlap, and put together must
equal the expected text byte for byte; exactly one final event (``final: true``) with
``next_offset`` = the log's length and exit code 0. Time from a task's end (the mtime of the
``exit`` file its wrapper writes on the host, read here: same machine) to its final event's
arrival.

Costs: the follower process's CPU (/proc/<pid>/stat) from just before the burst to the last
final event, divided by its looks at tasks. Looks are counted on the hosts: every look is one
``exec`` on the follower's SSH session to the host, and sshd (LogLevel VERBOSE) logs each
``Starting session: command ... port P``; the follower's source ports are sampled from its
sockets (/proc/<pid>/fd and /proc/net/tcp) every 0.5 s. Redis commands: INFO commandstats
delta over the same window (the script's own INFO calls taken out) divided by the pushes
delivered; it includes every process of the stack (the delivery service's commands, the
controller and workers for the launches, RQ's heartbeats).

Before starting, the script waits (polling every 30 s, at most 10 minutes) for the 1-minute
load average to fall to 1.5 or below. Everything started is stopped on exit, on errors and on
SIGTERM (remote tasks killed by their process group, their directories removed); the whole
run is bounded by an alarm. Results go to bench/RESULTS.md, section "Detached tasks (issue
14) (bench/detached.py)".
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import contextlib
import math
import os
import pwd
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

import bench.common as common
from bench.common import (
    LOAD_LIMIT,
    Child,
    Stack,
    cpu_seconds,
    load_average,
    log,
    median,
    parse_ts,
    percentile,
    table,
    wait_for_quiet,
    wait_until,
    write_section,
)
from tests.support.receiver import Receiver
from tests.support.sshd import DEFAULT_USER, OpenSSHServer

SECTION = "detached"
TITLE = "Detached tasks (issue 14) (bench/detached.py)"
HOOK_PATH = "/dt"
IDLE_WINDOW = 10.0
TASKS_DIR = ".netpulse/tasks"
_SESSION_RE = re.compile(r"Starting session: command for \S+ from (\S+) port (\d+) ")
_LOGIN_RE = re.compile(r"Accepted publickey for \S+ from (\S+) port (\d+) ")


class BenchTimeout(Exception):
    """The whole run took longer than its bound."""


def task_command(n: int, seconds: int) -> str:
    return f'i=0; while [ $i -lt {seconds} ]; do echo "task {n} line $i"; i=$((i+1)); sleep 1; done'


def expected_text(n: int, seconds: int) -> bytes:
    return "".join(f"task {n} line {i}\n" for i in range(seconds)).encode()


# -- the hosts' side: task directories, sshd logs ----------------------------------------------


def task_dir(task_id: str) -> Path:
    return Path(pwd.getpwnam(DEFAULT_USER).pw_dir) / TASKS_DIR / task_id


def kill_remote_tasks(task_ids: list[str], remove: bool) -> int:
    """Kill (by process group) every of our tasks still running on the hosts (all are on this
    machine, under the test account); with ``remove``, delete their directories. Returns how
    many were still running."""
    killed = 0
    for task_id in task_ids:
        d = task_dir(task_id)
        try:
            pid = int((d / "pid").read_text().strip())
        except (OSError, ValueError):
            pid = 0
        if pid > 0:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                cmdline = b""
            if str(d).encode() in cmdline:  # still that task's wrapper: its group is ours
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                    killed += 1
        if remove:
            shutil.rmtree(d, ignore_errors=True)
    return killed


def sshd_sessions(server: OpenSSHServer) -> tuple[Counter, Counter]:
    """Per source port: exec sessions started, and logins (sshd's VERBOSE log)."""
    sessions: Counter = Counter()
    logins: Counter = Counter()
    text = server.log_path.read_text(errors="replace")
    for m in _SESSION_RE.finditer(text):
        sessions[int(m.group(2))] += 1
    for m in _LOGIN_RE.finditer(text):
        logins[int(m.group(2))] += 1
    return sessions, logins


# -- the follower's sockets --------------------------------------------------------------------


def _hex_addr(text: str) -> tuple[str, int]:
    ip_hex, port_hex = text.split(":")
    ip = socket.inet_ntoa(bytes.fromhex(ip_hex)[::-1])
    return ip, int(port_hex, 16)


class SocketSampler:
    """Samples a process's TCP connections every ``interval`` s: (remote ip, remote port,
    local port) of each, accumulated (its SSH sessions to the hosts)."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid, self.interval = pid, interval
        self.seen: set[tuple[str, int, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sock-sampler")

    def start(self) -> SocketSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        inodes = set()
        try:
            for fd in os.listdir(f"/proc/{self.pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{self.pid}/fd/{fd}")
                    if link.startswith("socket:["):
                        inodes.add(link[8:-1])
        except OSError:
            return
        if not inodes:
            return
        try:
            lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
        except OSError:
            return
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[9] in inodes:
                _, local_port = _hex_addr(parts[1])
                remote_ip, remote_port = _hex_addr(parts[2])
                self.seen.add((remote_ip, remote_port, local_port))


# -- Redis -------------------------------------------------------------------------------------


class RedisCounter:
    """INFO commandstats snapshots; our own INFO calls are counted and taken out."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.own_info = 0

    def snapshot(self) -> Counter:
        assert self.stack.redis is not None
        stats = self.stack.redis.info("commandstats")
        self.own_info += 1
        return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})

    def delta(self, before: Counter, after: Counter, own_info_calls: int) -> Counter:
        out = Counter({k: after[k] - before.get(k, 0) for k in after})
        out["info"] -= own_info_calls
        return +out


# -- events received ---------------------------------------------------------------------------


@dataclass
class TaskEvents:
    pushes_raw: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)
    finals_raw: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)

    def pushes(self) -> dict[str, tuple[float, dict[str, Any]]]:
        """One per webhook-id (the first arrival)."""
        out: dict[str, tuple[float, dict[str, Any]]] = {}
        for wid, at, event in self.pushes_raw:
            out.setdefault(wid, (at, event))
        return out

    def finals(self) -> dict[str, tuple[float, dict[str, Any]]]:
        out: dict[str, tuple[float, dict[str, Any]]] = {}
        for wid, at, event in self.finals_raw:
            out.setdefault(wid, (at, event))
        return out


class Collector:
    """Reads the receiver's requests incrementally and files the detached events per task."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.cursor = 0
        self.tasks: dict[str, TaskEvents] = {}
        self.other = Counter()

    def update(self) -> None:
        got = self.receiver.on(HOOK_PATH)
        for item in got[self.cursor :]:
            event = item.json()
            kind = event.get("event_type", "")
            if not kind.startswith("detached."):
                self.other[kind] += 1
                continue
            wid = item.headers.get("webhook-id") or ""
            entry = self.tasks.setdefault(event["task_id"], TaskEvents())
            if event.get("final"):
                entry.finals_raw.append((wid, item.at, event))
            else:
                entry.pushes_raw.append((wid, item.at, event))
        self.cursor = len(got)

    def covered(self, task_id: str) -> int:
        """Bytes from 0 covered without a hole by the task's pushes so far."""
        entry = self.tasks.get(task_id)
        if entry is None:
            return 0
        pos = 0
        for _, event in sorted(entry.pushes().values(), key=lambda p: p[1]["offset"]):
            if event["offset"] > pos:
                break
            pos = max(pos, event["next_offset"])
        return pos

    def done(self, task_id: str, length: int) -> bool:
        entry = self.tasks.get(task_id)
        return bool(entry and entry.finals_raw) and self.covered(task_id) >= length


def check_task(entry: TaskEvents | None, expected: bytes) -> dict[str, Any]:
    """The checks of one task's events against its expected log."""
    entry = entry or TaskEvents()
    pushes = sorted(entry.pushes().values(), key=lambda p: (p[1]["offset"], p[1]["next_offset"]))
    gaps = gap_bytes = overlaps = overlap_bytes = bad_lengths = 0
    buf = bytearray()
    pos = delivered = 0
    for _, event in pushes:
        start, end = event["offset"], event["next_offset"]
        data = event["output"].encode()
        if end - start != len(data):
            bad_lengths += 1
        if start > pos:
            gaps += 1
            gap_bytes += start - pos
            buf.extend(b"\0" * (start - pos))
            pos = start
        if start < pos:
            overlaps += 1
            overlap_bytes += min(end, pos) - start
            data = data[pos - start :]
        buf.extend(data)
        delivered += len(data)
        pos = max(pos, end)
    if pos < len(expected):  # the tail never came
        gaps += 1
        gap_bytes += len(expected) - pos
    # Arrival order: a push that arrived after one with a higher offset (informational).
    by_arrival = sorted(pushes, key=lambda p: p[0])
    late = sum(
        1
        for i, (_, e) in enumerate(by_arrival)
        if any(o["offset"] > e["offset"] for _, o in by_arrival[:i])
    )
    finals = entry.finals()
    final_ok = False
    final_at = None
    if finals:
        final_at, final = min(finals.values(), key=lambda f: f[0])
        final_ok = (
            final["event_type"] == "detached.completed"
            and final.get("exit_code") == 0
            and final.get("next_offset") == len(expected)
        )
    return {
        "pushes": len(pushes),
        "pushes_raw": len(entry.pushes_raw),
        "raw_dup_pushes": len(entry.pushes_raw) - len(pushes),
        "gaps": gaps,
        "gap_bytes": gap_bytes,
        "overlaps": overlaps,
        "overlap_bytes": overlap_bytes,
        "bad_lengths": bad_lengths,
        "delivered_bytes": delivered,
        "text_equal": bytes(buf) == expected,
        "late_arrivals": late,
        "arrivals": [at for at, _ in pushes],
        "finals": len(finals),
        "finals_raw": len(entry.finals_raw),
        "final_ok": final_ok,
        "final_at": final_at,
        "final": min(finals.values(), key=lambda f: f[0])[1] if finals else None,
    }


# -- the run -----------------------------------------------------------------------------------


def start_follower(stack: Stack) -> Child:
    """``netpulse worker detached`` with the stack's environment (bench.common.Child: stopped
    on exit)."""
    child = stack._netpulse("detached", ["worker", "detached"])
    wait_until(
        lambda: "detached-task follower started" in child.log_path.read_text(errors="replace"),
        30,
        "the detached-task follower",
    )
    return child


def run(args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    task_ids = [f"bench-{tag}-{n:03d}" for n in range(args.tasks)]
    expected = {tid: expected_text(n, args.seconds) for n, tid in enumerate(task_ids)}
    per_host = math.ceil(args.tasks / args.hosts)
    servers: list[OpenSSHServer] = []
    receiver = Receiver()
    stack: Stack | None = None
    follower: Child | None = None
    sampler: SocketSampler | None = None
    receiver_up = False

    def cleanup_remote() -> None:
        killed = kill_remote_tasks(task_ids, remove=True)
        if killed:
            log(f"killed {killed} remote task(s) still running")

    try:
        for i in range(args.hosts):
            server = OpenSSHServer(host=f"127.0.0.{i + 1}")
            common._CLEANUPS.append(server.stop)
            servers.append(server.start())
        addresses = ", ".join(f"{s.host}:{s.port}" for s in servers)
        log(f"{len(servers)} OpenSSH servers up: {addresses}")
        receiver.__enter__()
        receiver_up = True
        extra_env = {
            # The servers' client keys are in temporary directories.
            "NETPULSE_DRIVERS__FILES_DIR": os.path.realpath(tempfile.gettempdir()),
            "NETPULSE_DETACHED__MAX_TASKS_PER_HOST": str(max(20, per_host)),
        }
        stack = Stack(fifo_workers=args.workers, extra_env=extra_env).start()
        follower = start_follower(stack)
        common._CLEANUPS.append(cleanup_remote)  # runs first: LIFO
        sampler = SocketSampler(follower.pid).start()
        redis = RedisCounter(stack)
        collector = Collector(receiver)

        # Idle window: the background of the stack and the idle follower.
        idle_cpu0, idle_r0, idle_t0 = cpu_seconds(follower.pid), redis.snapshot(), time.monotonic()
        time.sleep(IDLE_WINDOW)
        idle_cpu1, idle_r1 = cpu_seconds(follower.pid), redis.snapshot()
        idle_elapsed = time.monotonic() - idle_t0
        idle_calls = redis.delta(idle_r0, idle_r1, 1)
        idle = {
            "seconds": idle_elapsed,
            "cpu": idle_cpu1 - idle_cpu0,
            "calls": sum(idle_calls.values()),
            "by_command": idle_calls,
        }
        log(
            f"idle {idle_elapsed:.1f} s: follower CPU {idle['cpu']:.2f} s, "
            f"{idle['calls']} Redis commands"
        )

        # The burst of launches.
        cpu0 = cpu_seconds(follower.pid)
        info_before = redis.own_info
        r0 = redis.snapshot()
        t0 = time.monotonic()
        load_burst = load_average()
        submitted: list[tuple[str, str, float]] = []  # task id, job id, wall time before POST
        for n, task_id in enumerate(task_ids):
            server = servers[n % args.hosts]
            body = {
                "driver": "paramiko",
                "connection_args": {
                    "host": server.host,
                    "port": server.port,
                    "username": server.username,
                    "key_filename": str(server.key_filename),
                },
                "command": task_command(n, args.seconds),
                "detach": True,
                "push_interval": args.push_interval,
                "task_id": task_id,
                "webhook": {"url": receiver.url(HOOK_PATH)},
            }
            wall = time.time()
            created = stack.submit(body)
            submitted.append((task_id, created["id"], wall))
        log(f"{len(submitted)} jobs submitted in {time.monotonic() - t0:.2f} s")
        launch_deadline = time.monotonic() + 120 + args.tasks * 2
        launch: list[float] = []
        queue: list[float] = []
        inside: list[float] = []
        failed_launches: list[str] = []
        for task_id, job_id, wall in submitted:
            try:
                job = stack.wait_job(job_id, timeout=max(launch_deadline - time.monotonic(), 1))
            except (RuntimeError, httpx.HTTPError) as exc:
                failed_launches.append(f"{task_id}: not ended: {exc}")
                continue
            rows = (job.get("result") or {}).get("retval") or []
            ok = (
                job["status"] == "finished"
                and job.get("task_id") == task_id
                and rows
                and rows[0].get("metadata", {}).get("task_id") == task_id
            )
            if not ok:
                failed_launches.append(f"{task_id}: {job['status']} {job.get('result')}")
                continue
            launch.append(parse_ts(job["ended_at"]) - wall)
            queue.append(parse_ts(job["started_at"]) - parse_ts(job["enqueued_at"]))
            inside.append(parse_ts(job["ended_at"]) - parse_ts(job["started_at"]))
        launched_at, launched_wall = time.monotonic(), time.time()
        r_launched = redis.snapshot()
        log(
            f"{len(launch)}/{args.tasks} launched in {launched_at - t0:.1f} s; launch median "
            f"{median(launch):.3f} s, p95 {percentile(launch, 95):.3f} s"
            if launch
            else "no task launched"
        )
        for failure in failed_launches[:5]:
            log(f"launch failed: {failure}")
        launched = [
            tid for tid in task_ids if not any(f.startswith(tid + ":") for f in failed_launches)
        ]

        # Follow: until every launched task's final event came and its pushes cover its log.
        follow_deadline = time.monotonic() + args.seconds + 3 * args.push_interval + 120
        waiting = set(launched)
        while waiting and time.monotonic() < follow_deadline:
            time.sleep(0.5)
            collector.update()
            waiting = {t for t in waiting if not collector.done(t, len(expected[t]))}
        all_done_at = time.monotonic()
        cpu1 = cpu_seconds(follower.pid)
        info_calls = redis.own_info - info_before  # snapshots taken in the window so far
        r1 = redis.snapshot()
        if waiting:
            log(f"{len(waiting)} task(s) not complete at the deadline: {sorted(waiting)[:5]}")
        else:
            log(f"every task's log and final event received {all_done_at - t0:.1f} s after start")
        grace = max(10.0, 2 * args.push_interval)
        log(f"grace {grace:.0f} s for late duplicates")
        time.sleep(grace)
        collector.update()
        sampler.stop()

        # The hosts' side: sshd logs, exit files, the logs themselves.
        follower_ports = sampler.seen
        looks = launches_seen = follower_logins = other_sessions = 0
        ssh_conns = {c for c in follower_ports if any((s.host, s.port) == c[:2] for s in servers)}
        for server in servers:
            sessions, logins = sshd_sessions(server)
            for port, count in sessions.items():
                if (server.host, server.port, port) in follower_ports:
                    looks += count
                else:
                    other_sessions += count
            for port, count in logins.items():
                if (server.host, server.port, port) in follower_ports:
                    follower_logins += count
        launches_seen = other_sessions
        ends: dict[str, float] = {}
        host_logs_ok = 0
        for task_id in launched:
            d = task_dir(task_id)
            with contextlib.suppress(OSError):
                ends[task_id] = (d / "exit").stat().st_mtime
            with contextlib.suppress(OSError):
                host_logs_ok += (d / "log").read_bytes() == expected[task_id]
        follower_alive = follower.alive()
        return {
            "args": vars(args),
            "idle": idle,
            "load_burst": load_burst,
            "submitted": len(submitted),
            "launched": launched,
            "failed_launches": failed_launches,
            "launch": launch,
            "queue": queue,
            "inside": inside,
            "launch_phase": launched_at - t0,
            "launched_wall": launched_wall,
            "follow_elapsed": all_done_at - t0,
            "incomplete": sorted(waiting),
            "cpu": cpu1 - cpu0,
            "redis": redis.delta(r0, r1, info_calls),
            "redis_launch": redis.delta(r0, r_launched, 1),
            "looks": looks,
            "launch_sessions": launches_seen,
            "follower_logins": follower_logins,
            "follower_conns": len(ssh_conns),
            "checks": {t: check_task(collector.tasks.get(t), expected[t]) for t in launched},
            "expected_bytes": {t: len(expected[t]) for t in launched},
            "ends": ends,
            "host_logs_ok": host_logs_ok,
            "other_events": dict(collector.other),
            "follower_alive": follower_alive,
            "follower_log_tail": follower.log_path.read_text(errors="replace")[-3000:],
        }
    finally:
        if sampler is not None:
            sampler.stop()
        if follower is not None:
            follower.stop()
        cleanup_remote()
        with contextlib.suppress(ValueError):
            common._CLEANUPS.remove(cleanup_remote)
        if stack is not None:
            stack.stop()
        if receiver_up:
            receiver.__exit__(None, None, None)
        for server in servers:
            server.stop()


# -- the report --------------------------------------------------------------------------------


def s3(v: float) -> str:
    return f"{v:.3f} s"


def summarize(r: dict[str, Any]) -> dict[str, Any]:
    a = r["args"]
    checks = r["checks"]
    launched = r["launched"]
    pushes = sum(c["pushes"] for c in checks.values())
    e2f = [
        c["final_at"] - r["ends"][t]
        for t, c in checks.items()
        if c["final_at"] is not None and t in r["ends"]
    ]
    noticed = []  # the task's end -> the follower's ended_at (in the final event)
    for t, c in checks.items():
        if c["final"] is not None and t in r["ends"] and c["final"].get("ended_at"):
            noticed.append(parse_ts(c["final"]["ended_at"]) - r["ends"][t])
    # Looks estimated from the clock: each task looked at once on launch, then every
    # push_interval until the look that finds it ended.
    est = 0.0
    for c in checks.values():
        if c["final"] is not None and c["final"].get("started_at") and c["final"].get("ended_at"):
            span = parse_ts(c["final"]["ended_at"]) - parse_ts(c["final"]["started_at"])
            est += span / a["push_interval"] + 1
    calls = sum(r["redis"].values())
    # Intervals between a task's consecutive pushes (arrival times at the receiver).
    intervals = [
        b - a
        for c in checks.values()
        for a, b in zip(sorted(c["arrivals"]), sorted(c["arrivals"])[1:], strict=False)
    ]
    return {
        "pushes": pushes,
        "pushes_raw": sum(c["pushes_raw"] for c in checks.values()),
        "raw_dup_pushes": sum(c["raw_dup_pushes"] for c in checks.values()),
        "gaps": sum(c["gaps"] for c in checks.values()),
        "gap_bytes": sum(c["gap_bytes"] for c in checks.values()),
        "overlaps": sum(c["overlaps"] for c in checks.values()),
        "overlap_bytes": sum(c["overlap_bytes"] for c in checks.values()),
        "bad_lengths": sum(c["bad_lengths"] for c in checks.values()),
        "late_arrivals": sum(c["late_arrivals"] for c in checks.values()),
        "expected_bytes": sum(r["expected_bytes"].values()),
        "delivered_bytes": sum(c["delivered_bytes"] for c in checks.values()),
        "text_equal": sum(c["text_equal"] for c in checks.values()),
        "finals_hist": Counter(c["finals"] for c in checks.values()),
        "finals_raw_hist": Counter(c["finals_raw"] for c in checks.values()),
        "final_ok": sum(c["final_ok"] for c in checks.values()),
        "e2f": e2f,
        "noticed": noticed,
        "looks_est": est,
        "intervals": intervals,
        "calls": calls,
        "calls_launch": sum(r["redis_launch"].values()),
        "pushes_after_launch": sum(
            at > r["launched_wall"] for c in checks.values() for at in c["arrivals"]
        ),
        "n": len(launched),
    }


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(r: dict[str, Any], s: dict[str, Any], load: dict[str, Any]) -> list[str]:
    a = r["args"]
    n = s["n"]
    looks = r["looks"]
    pushes = s["pushes"]
    empty = looks - pushes
    per_look = r["cpu"] / looks if looks else float("nan")
    one_final = s["finals_hist"].get(1, 0)
    rows = [
        [
            "Tasks launched (jobs `detach: true`, submitted in one burst)",
            f"{len(r['launched'])}/{r['submitted']} finished with their `task_id`; "
            f"{len(r['failed_launches'])} failed",
            f"**{len(r['launched'])}**",
            f"{a['tasks']}",
            verdict(len(r["launched"]) == a["tasks"]),
        ],
        [
            "Launch time: submission (client, before the POST) to the job's `ended_at`",
            f"median {s3(median(r['launch']))}, p95 {s3(percentile(r['launch'], 95))}, max "
            f"{s3(max(r['launch']))}; of it queue (enqueued_at to started_at) median "
            f"{s3(median(r['queue']))}, in the worker (started_at to ended_at) median "
            f"{s3(median(r['inside']))}; all {len(r['launch'])} launched "
            f"{r['launch_phase']:.1f} s after the first POST",
            f"median **{s3(median(r['launch']))}**, p95 **{s3(percentile(r['launch'], 95))}**",
            "-",
            "reported",
        ]
        if r["launch"]
        else ["Launch time", "no task launched", "-", "-", "MISS"],
        [
            "Log bytes: expected vs delivered (sum over tasks; pushes de-duplicated on "
            "`webhook-id`, put together by byte range)",
            f"expected {s['expected_bytes']} B, delivered {s['delivered_bytes']} B in "
            f"{pushes} pushes; text equal to the expected byte for byte: {s['text_equal']}/{n} "
            f"tasks; `next_offset - offset` = bytes of `output`: "
            f"{pushes - s['bad_lengths']}/{pushes}",
            f"**{s['delivered_bytes']}/{s['expected_bytes']}** B, {s['text_equal']}/{n} exact",
            "all, exact",
            verdict(s["delivered_bytes"] == s["expected_bytes"] and s["text_equal"] == n),
        ],
        [
            "Gaps (a range's `offset` past the previous `next_offset`, or a missing tail)",
            f"{s['gaps']} gaps ({s['gap_bytes']} B)",
            f"**{s['gaps']}**",
            "0",
            verdict(s["gaps"] == 0),
        ],
        [
            "Duplicate ranges received: after `webhook-id` de-dup (ranges overlapping another)"
            " / raw (same `webhook-id` delivered again)",
            f"after de-dup {s['overlaps']} ({s['overlap_bytes']} B); raw {s['raw_dup_pushes']} "
            f"of {s['pushes_raw']} push requests",
            f"**{s['overlaps']}** / {s['raw_dup_pushes']}",
            "0 / -",
            verdict(s["overlaps"] == 0),
        ],
        [
            "Final events per task (distinct `webhook-id`, `final: true`)",
            "tasks by finals: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(s["finals_hist"].items()))
            + "; raw requests: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(s["finals_raw_hist"].items()))
            + f"; `detached.completed`, exit 0, `next_offset` = log length: {s['final_ok']}/{n}",
            f"**{one_final}/{n}** with exactly 1",
            "1 each",
            verdict(one_final == n and s["final_ok"] == n),
        ],
        [
            "Time from a task's end (mtime of its `exit` file on the host) to its final "
            "event's arrival",
            (
                f"median {s3(median(s['e2f']))}, p95 {s3(percentile(s['e2f'], 95))}, max "
                f"{s3(max(s['e2f']))} ({len(s['e2f'])} tasks); of it end to the follower's "
                f"`ended_at` median {s3(median(s['noticed']))}"
                if s["e2f"]
                else "no final event"
            ),
            (
                f"median **{s3(median(s['e2f']))}**, p95 **{s3(percentile(s['e2f'], 95))}**"
                if s["e2f"]
                else "-"
            ),
            f"<= push_interval ({a['push_interval']} s) + delivery",
            "reported",
        ],
        [
            "Follower CPU per task-poll (process CPU from /proc/<pid>/stat, first POST to "
            "the last final event, / looks)",
            f"{r['cpu']:.2f} s CPU over {r['follow_elapsed']:.1f} s; {looks} looks counted on "
            f"the hosts ({pushes} pushes + {empty} looks without a push); clock estimate "
            f"{s['looks_est']:.0f} looks",
            f"**{per_look * 1000:.2f} ms** per look ({r['cpu'] / max(pushes, 1) * 1000:.2f} ms "
            f"per push, {r['cpu'] / max(n, 1):.3f} s per task)",
            "-",
            "reported",
        ],
        [
            "Redis commands per push (INFO commandstats delta over the same window / pushes;"
            " all processes: delivery service, controller, workers, follower)",
            f"{s['calls']} commands / {pushes} pushes (of them during the launches "
            f"{s['calls_launch']}); the idle stack's background "
            f"{r['idle']['calls'] / r['idle']['seconds']:.1f}/s would be "
            f"{r['idle']['calls'] / r['idle']['seconds'] * r['follow_elapsed']:.0f} of them",
            f"**{s['calls'] / max(pushes, 1):.1f}** per push (after the launches: "
            f"{(s['calls'] - s['calls_launch']) / max(s['pushes_after_launch'], 1):.1f})",
            "-",
            "reported",
        ],
    ]
    top = ", ".join(f"{k} {v}" for k, v in r["redis"].most_common(14))
    launch_top = ", ".join(f"{k} {v}" for k, v in r["redis_launch"].most_common(6))
    idle_top = ", ".join(f"{k} {v}" for k, v in r["idle"]["by_command"].most_common(6))
    notes = [
        f"- Setup: {a['hosts']} OpenSSH servers (tests/support/sshd.py) on 127.0.0.1-"
        f"127.0.0.{a['hosts']}, key login, one account; {a['tasks']} tasks, task N on host "
        f'N mod {a["hosts"]}; each `i=0; while [ $i -lt {a["seconds"]} ]; do echo "task N '
        f'line $i"; i=$((i+1)); sleep 1; done` ({a["seconds"]} lines, '
        f"{s['expected_bytes'] / max(n, 1):.0f} B per task on average); `push_interval: "
        f"{a['push_interval']}`; stack of bench/common.py ({a['workers']} FIFO workers, the "
        "delivery service) plus `netpulse worker detached` started with the same environment; "
        "detached settings at their defaults (lease 60 s, read chunk 256 KiB). Receiver: "
        "tests/support/receiver.py in the benchmark's process (it keeps bodies; "
        "bench/receiver.py does not).",
        f"- Load average at the burst {r['load_burst']}. Before the run: load {load['first']}; "
        f"waited {load['waited']:.0f} s for the 1-minute load to reach {LOAD_LIMIT} or less.",
        f"- Checks per task: the pushes de-duplicated on `webhook-id`, sorted by `offset`, "
        f"tile [0, length) with no gap and no overlap and put together equal the expected text; "
        f"one final event with `next_offset` = length. The logs on the hosts equal the "
        f"expected text for {r['host_logs_ok']}/{n} tasks. Pushes that arrived after a push of "
        f"a higher offset of the same task (out of order on the wire, re-ordered by offset "
        f"as the receiver must): {s['late_arrivals']}. Other events received: "
        f"{r['other_events']} (the launching jobs' own).",
        f"- Looks: counted on the hosts, as the `exec` sessions sshd (LogLevel VERBOSE) logged "
        f"on the follower's connections ({r['follower_conns']} connections, {r['follower_logins']}"
        f" logins; its source ports sampled from its sockets every 0.5 s): one `exec` per look "
        f"(a task's whole log is below the 256 KiB read chunk). The other connections (the "
        f"launching workers) opened {r['launch_sessions']} sessions for {len(r['launched'])} "
        f"launches. The clock estimate (per task: (follower's `ended_at` - `started_at`) / "
        f"push_interval + 1) is {s['looks_est']:.0f}.",
        f"- Follower CPU includes its idle loop (it blocks on Redis for at most 1 s between "
        f"rounds) and its {r['follower_logins']} SSH logins; idle, it used "
        f"{r['idle']['cpu']:.2f} s of CPU in {r['idle']['seconds']:.0f} s.",
        f"- Redis commands in the window ({r['follow_elapsed']:.0f} s), the largest: {top}. "
        f"Idle stack, {r['idle']['seconds']:.0f} s: {r['idle']['calls']} commands ({idle_top}). "
        f"After the launches: the commands from the last launching job's end to the last final "
        f"event ({s['calls'] - s['calls_launch']}) / the pushes that arrived in that time "
        f"({s['pushes_after_launch']}). During the launches ({r['launch_phase']:.1f} s, "
        f"{s['calls_launch']} commands, {s['calls_launch'] / max(n, 1):.0f} per launch): "
        f"{launch_top}.",
    ]
    if s["intervals"]:
        iv = s["intervals"]
        notes.append(
            f"- A task's consecutive pushes arrived {median(iv):.2f} s apart (median; p95 "
            f"{percentile(iv, 95):.2f} s, min {min(iv):.2f} s, max {max(iv):.2f} s): the "
            f"follower schedules a task's next look `push_interval` after a look ends, so its "
            f"looks drift later by the time a look takes. The time from a task's end to its "
            f"final event depends on where the end falls between two looks: up to "
            f"`push_interval` + delivery in general. Here every task ran "
            f"{a['seconds']} x (echo + sleep 1) s, just over {a['seconds'] / a['push_interval']:g}"
            f" intervals, so the look that found it ended came soon after the end "
            f"(looks per task: {r['looks'] / max(n, 1):.1f})."
        )
    if r["failed_launches"]:
        notes.append(f"- Failed launches: {r['failed_launches'][:5]}")
    if r["incomplete"]:
        notes.append(
            f"- **{len(r['incomplete'])} task(s) incomplete at the deadline**: "
            f"{r['incomplete'][:10]}"
        )
    if not r["follower_alive"]:
        notes.append("- **The follower process had exited before the end of the run.**")
    return [table(["Benchmark", "Measured", "Result", "Target", "Verdict"], rows), "\n".join(notes)]


def problems(r: dict[str, Any], s: dict[str, Any]) -> list[str]:
    """Per task, what went wrong (for the log)."""
    out = []
    for t, c in r["checks"].items():
        bad = []
        if c["gaps"]:
            bad.append(f"{c['gaps']} gaps ({c['gap_bytes']} B)")
        if c["overlaps"]:
            bad.append(f"{c['overlaps']} overlaps ({c['overlap_bytes']} B)")
        if not c["text_equal"]:
            bad.append("text differs")
        if c["finals"] != 1:
            bad.append(f"{c['finals']} finals")
        if c["finals"] and not c["final_ok"]:
            f = c["final"]
            bad.append(
                f"final {f['event_type']} exit {f.get('exit_code')} next_offset "
                f"{f.get('next_offset')} error {f.get('error')}"
            )
        if bad:
            out.append(f"{t}: " + "; ".join(bad))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=60, help="lines (one a second) per task")
    parser.add_argument("--push-interval", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4, help="FIFO worker processes")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    if not 1 <= args.hosts <= 200:
        parser.error("--hosts must be 1-200 (one 127.0.0.x address each)")
    if os.geteuid() != 0:
        parser.error("needs root: tests/support/sshd.py creates an account and runs sshd")

    load = wait_for_quiet()
    common.LOAD_AT_START = load_average()
    began = time.monotonic()
    bound = 600 + 2 * args.seconds + 3 * args.tasks

    def on_alarm(signum: int, frame: Any) -> None:
        raise BenchTimeout(f"the run took longer than {bound} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(bound)
    try:
        result = run(args)
    finally:
        signal.alarm(0)
    s = summarize(result)
    parts = report(result, s, load)
    print(parts[0])
    print(parts[1])
    for line in problems(result, s)[:20]:
        log(f"problem: {line}")
    if not result["follower_alive"] or "Traceback" in result["follower_log_tail"]:
        log("follower log tail:\n" + result["follower_log_tail"])
    if not args.no_write:
        write_section(SECTION, TITLE, time.monotonic() - began, *parts)
    log(f"done in {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
