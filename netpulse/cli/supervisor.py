"""`netpulse up`: start and watch every process of a one-machine NetPulse.

Order: private Redis (only when no Redis URL is configured), lab devices (``--lab``), then the
controller, the FIFO worker pool, a worker node and the webhook delivery service as child
processes that read the same settings from their environment. It says "NetPulse is up" only
once ``GET /health/ready`` answers 200, so a job submitted right after that runs.

Supervision:

- Each child runs in a process group of its own (a new session). It is stopped with SIGTERM
  to the child itself, which stops its own children the way it knows (a FIFO pool stops its
  workers warm, so running jobs end; a signal to the whole group would reach each worker twice,
  and RQ takes a second signal for a cold stop that kills the job). After CHILD_STOP_TIMEOUT the
  whole group is killed (SIGKILL); and whenever a child has exited, by itself or killed, what is
  left of its group is killed too, before the child is reaped (until then its pid, the group's
  id, cannot be reused), so no worker survives its pool.
- Every child dies with ``netpulse up`` (``runtime/lifeline.py``: the supervisor's pid in
  ``NETPULSE_PARENT_PID``, read first thing by ``python -m netpulse``), and so does the private
  ``redis-server``; so nothing outlives it, even when it is killed with SIGKILL. Children are
  started from the main thread only: the kernel's signal follows the thread that forked.
- A child that dies is started again after a back-off (1 s, 2 s, 4 s ... 30 s; back to 1 s
  once it had run for STABLE_AFTER seconds). When one child died more than
  ``supervisor.max_restarts`` times within ``supervisor.restart_window_seconds``, ``netpulse up``
  stops everything and exits with status 1, saying which child and why. Otherwise it stops only
  on Ctrl-C or SIGTERM (a second one skips the grace period).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from netpulse.cli.common import REDIS_URL_FILE
from netpulse.cli.delivery_scaler import DeliveryScaler
from netpulse.config import Settings
from netpulse.runtime.lifeline import child_env
from netpulse.runtime.redis_conn import connect
from netpulse.security.sealing import file_key

log = logging.getLogger(__name__)

READY_TIMEOUT = 60.0
#: A node finishes running jobs for up to 30 s on SIGTERM; give it that and a margin.
CHILD_STOP_TIMEOUT = 45.0
#: First and longest wait before a dead child is started again (seconds).
RESTART_DELAY_FIRST = 1.0
RESTART_DELAY_CAP = 30.0
#: A child that ran this long was stable: its next restart waits RESTART_DELAY_FIRST again.
STABLE_AFTER = 60.0
#: How often children are looked at (a death is noticed within this).
POLL_INTERVAL = 0.2


def describe_exit(returncode: int) -> str:
    """``exit status 1`` or ``killed by SIGKILL`` (Popen's negative return codes)."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a whole process group; a group already empty is fine."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        log.warning("cannot signal process group %d (%s)", pgid, exc)


@dataclass
class RestartPolicy:
    """When to start a dead child again, and when to give up on it."""

    max_restarts: int
    window: float
    first: float = RESTART_DELAY_FIRST
    cap: float = RESTART_DELAY_CAP
    stable_after: float = STABLE_AFTER
    deaths: deque[float] = field(default_factory=deque)
    next_delay: float = 0.0

    def __post_init__(self) -> None:
        self.next_delay = self.first

    def died(self, now: float, ran_for: float) -> float | None:
        """Count a death at ``now`` (monotonic) of a life of ``ran_for`` seconds; the delay
        before the next start, or None when the child died too often to go on."""
        self.deaths.append(now)
        while self.deaths and self.deaths[0] <= now - self.window:
            self.deaths.popleft()
        if len(self.deaths) > self.max_restarts:
            return None
        if ran_for >= self.stable_after:
            self.next_delay = self.first
        delay, self.next_delay = self.next_delay, min(self.next_delay * 2, self.cap)
        return delay


class Child:
    """One supervised ``python -m netpulse ...`` process and its restarts."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log_path: Path, policy: RestartPolicy
    ) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_path
        self.policy = policy
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        #: When a dead child is due to start again (monotonic); None while it runs.
        self.restart_at: float | None = None
        self.starts = 0
        #: stopped on purpose (an extra delivery process no longer needed): not restarted
        self.retiring = False

    @property
    def running(self) -> bool:
        return self.process is not None

    def start(self) -> None:
        self.starts += 1
        if self.starts > 1:
            self.note(f"starting {self.name} again (start {self.starts})")
        with open(self.log_path, "ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "netpulse", *self.args],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        self.restart_at = None

    def note(self, text: str) -> None:
        """A line in the child's own log, where its crash output is, so each life is found."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            with open(self.log_path, "a") as output:
                output.write(f"{stamp} [netpulse up] {text}\n")
        except OSError as exc:
            log.warning("cannot write to %s: %s", self.log_path, exc)

    def reap(self) -> int | None:
        """The exit code once the child has exited, after killing the rest of its group."""
        process = self.process
        if process is None:
            return None
        if process.returncode is None:
            if hasattr(os, "waitid"):
                # Look without reaping: the zombie keeps the group id from being reused
                # until the group is killed.
                try:
                    running = (
                        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                        is None
                    )
                except ChildProcessError:
                    running = False
                if running:
                    return None
            elif process.poll() is None:
                return None
            kill_group(process.pid)
        code = process.wait()
        self.process = None
        return code

    def signal(self, sig: int) -> None:
        """Signal the child itself. Not ``Popen.send_signal``: it reaps an exited child first,
        and then the group could no longer be killed safely."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, sig)

    def kill(self) -> None:
        if self.process is not None:
            kill_group(self.process.pid)


def load_or_create_api_key(data_dir: Path) -> str:
    """The API key kept in the data directory, created (0600) on first run."""
    path = data_dir / "api_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return key


def print_inventory(console: Console, devices: list[Any]) -> None:
    table = Table(title="Lab devices (simulated, loopback only)")
    for column in ("name", "host", "port", "device_type", "username", "password", "secret"):
        table.add_column(column)
    for d in devices:
        table.add_row(
            d.name, d.host, str(d.port), d.device_type, d.username, d.password, d.secret or ""
        )
    console.print(table)


class GaveUp(RuntimeError):
    """A child died too often; the message says which and how."""


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        lab: bool = False,
        host: str | None = None,
        port: int | None = None,
        workers: int | None = None,
        data_dir: Path | None = None,
        nodes: int | None = None,
    ) -> None:
        self.settings = settings
        #: worker node processes: one per core by default (supervisor.nodes)
        self.nodes = nodes or settings.supervisor.node_count()
        self.lab = lab
        self.host = host or settings.server.host
        self.port = port or settings.server.port
        self.workers = workers or settings.worker.pool_size
        self.data_dir = (data_dir or settings.data_dir).resolve()
        self.children: list[Child] = []
        #: starts and stops extra delivery processes with the backlog (once children run)
        self._scaler: DeliveryScaler | None = None
        self.stop_requested = threading.Event()
        #: SIGINT/SIGTERM received so far; a second one while stopping skips the grace period.
        self.signals = 0

    def _env(self, redis_url: str, api_key: str) -> dict[str, str]:
        env = child_env(os.environ)
        env["NETPULSE_REDIS__URL"] = redis_url
        env["NETPULSE_SERVER__API_KEY"] = api_key
        env["NETPULSE_DATA_DIR"] = str(self.data_dir)
        return env

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        cfg = self.settings.supervisor
        policy = RestartPolicy(cfg.max_restarts, cfg.restart_window_seconds)
        child = Child(name, args, env, self.data_dir / f"{name}.log", policy)
        child.start()
        self.children.append(child)
        return child

    def _retire(self, child: Child) -> None:
        """Stop a child on purpose (SIGTERM; the supervisor forgets it once it ended)."""
        child.retiring = True
        child.restart_at = None
        child.signal(signal.SIGTERM)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signals += 1
        self.stop_requested.set()

    # -- watching -----------------------------------------------------------------------------

    def _supervise(self, console: Console) -> None:
        """One look at every child: note the dead, start those whose back-off is over.
        Raises :class:`GaveUp` when one died too often."""
        for child in list(self.children):
            now = time.monotonic()
            if child.retiring:
                if child.reap() is not None or not child.running:
                    self.children.remove(child)
                continue
            if not child.running:
                if child.restart_at is not None and now >= child.restart_at:
                    child.start()
                    assert child.process is not None
                    self._say(console, f"{child.name} started again (pid {child.process.pid})")
                continue
            assert child.process is not None
            pid = child.process.pid
            code = child.reap()
            if code is None:
                continue
            ran_for = now - child.started_at
            delay = child.policy.died(now, ran_for)
            what = describe_exit(code)
            if delay is None:
                reason = (
                    f"{child.name} (pid {pid}) ended: {what}; it died "
                    f"{len(child.policy.deaths)} times within "
                    f"{child.policy.window:g} s (supervisor.max_restarts is "
                    f"{child.policy.max_restarts}); giving up. See {child.log_path}"
                )
                child.note(reason)
                raise GaveUp(reason)
            child.restart_at = now + delay
            message = (
                f"{child.name} (pid {pid}) ended: {what} after {ran_for:.1f} s; "
                f"restarting in {delay:g} s. See {child.log_path}"
            )
            child.note(message)
            self._say(console, message, style="yellow")

    @staticmethod
    def _say(console: Console, text: str, style: str | None = None) -> None:
        console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)
        sys.stdout.flush()

    def _readiness(self, url: str) -> tuple[bool, str]:
        """Whether ``/health/ready`` answers 200, and what is missing otherwise."""
        try:
            reply = httpx.get(url + "/health/ready", timeout=2, trust_env=False)
        except httpx.HTTPError:
            return False, "the controller does not answer"
        if reply.status_code == 200:
            return True, ""
        try:
            missing = reply.json().get("missing") or []
        except ValueError:
            missing = []
        return False, f"missing: {', '.join(missing)}" if missing else f"HTTP {reply.status_code}"

    def _wait_ready(self, console: Console, url: str) -> str | None:
        """Watch the children until NetPulse is ready: None then, else why not in time."""
        deadline = time.monotonic() + READY_TIMEOUT
        why = "the controller does not answer"
        while not self.stop_requested.is_set():
            self._supervise(console)
            ready, why = self._readiness(url)
            if ready:
                return None
            if time.monotonic() >= deadline:
                return why
            self.stop_requested.wait(POLL_INTERVAL)
        return None

    def _stop_children(self) -> None:
        """SIGTERM to each child (in reverse order of start), then SIGKILL to each group whose
        child has not ended within CHILD_STOP_TIMEOUT (or at once on a second Ctrl-C)."""
        signals_before = self.signals
        for child in reversed(self.children):
            child.restart_at = None
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + CHILD_STOP_TIMEOUT
        while True:
            for child in self.children:
                child.reap()
            left = [c for c in self.children if c.running]
            if not left:
                return
            if time.monotonic() >= deadline or self.signals > signals_before:
                for child in left:
                    log.warning("%s did not stop in time; killing its process group", child.name)
                    child.kill()
                for child in left:
                    if child.process is not None:
                        child.process.wait()
                        child.process = None
                return
            time.sleep(0.05)

    def run(self, console: Console) -> int:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # httpx logs every readiness probe at INFO; what the supervisor sees is said below.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        redis = None
        fleet = None
        code = 0
        try:
            redis_url = self.settings.redis.url
            if not redis_url:
                from netpulse.runtime.redis_server import RedisServer

                # Started first, while this process has no other thread (see lifeline).
                redis = RedisServer(
                    data_dir=self.data_dir / "redis", appendonly=True, die_with_parent=True
                )
                (self.data_dir / "redis").mkdir(exist_ok=True)
                redis_url = redis.start()
                # For `netpulse credential` / `netpulse key` run beside this one.
                url_file = self.data_dir / REDIS_URL_FILE
                url_file.touch(mode=0o600)
                url_file.write_text(redis_url + "\n")
            api_key = (
                self.settings.server.api_key.get_secret_value()
                if self.settings.server.api_key
                else load_or_create_api_key(self.data_dir)
            )
            if not self.settings.security.encryption_keys:
                file_key(self.data_dir)  # one sealing key for every process started here
            env = self._env(redis_url, api_key)
            self._spawn(
                "controller", ["controller", "--host", self.host, "--port", str(self.port)], env
            )
            self._spawn("worker-fifo", ["worker", "fifo", "--size", str(self.workers)], env)
            for index in range(1, self.nodes + 1):
                # The first keeps the single node's name ("local") and log (worker-node.log).
                suffix = "" if index == 1 else f"-{index}"
                self._spawn(
                    f"worker-node{suffix}", ["worker", "node", "--name", f"local{suffix}"], env
                )
            self._spawn("worker-webhooks", ["worker", "webhooks"], env)
            self._scaler = DeliveryScaler(
                connect(redis_url),
                start=lambda name: self._spawn(name, ["worker", "webhooks"], env),
                stop=self._retire,
                max_extra=max((os.cpu_count() or 1) - 1, 0),
            )
            self._spawn("worker-detached", ["worker", "detached"], env)
            self._spawn("worker-audit", ["worker", "audit"], env)
            devices = []
            if self.lab:
                from netpulse.lab.fleet import LabFleet

                fleet = LabFleet()
                devices = fleet.start()
                inventory = [{"name": d.name, **d.connection_args()} for d in devices]
                (self.data_dir / "lab-inventory.json").write_text(json.dumps(inventory, indent=2))
            url = f"http://{self.host}:{self.port}"
            not_ready = self._wait_ready(console, url)
            if not_ready is not None:
                self._say(
                    console,
                    f"NetPulse is not ready at {url} after {READY_TIMEOUT:g} s ({not_ready}); "
                    f"see the logs in {self.data_dir}",
                    style="red",
                )
                return 1
            if self.stop_requested.is_set():
                return code
            self._announce(console, url, api_key, redis_url, devices)
            while not self.stop_requested.is_set():
                self._supervise(console)
                if self._scaler is not None:
                    self._scaler.look()
                self.stop_requested.wait(POLL_INTERVAL)
            return code
        except GaveUp as exc:
            self._say(console, str(exc), style="red")
            return 1
        except RuntimeError as exc:
            self._say(console, str(exc), style="red")
            return 1
        finally:
            console.print("stopping NetPulse ...")
            self._stop_children()
            if fleet is not None:
                fleet.stop()
            if redis is not None:
                redis.stop()
                (self.data_dir / REDIS_URL_FILE).unlink(missing_ok=True)
            console.print("stopped.")

    def _announce(
        self, console: Console, url: str, api_key: str, redis_url: str, devices: list[Any]
    ) -> None:
        header = self.settings.server.api_key_header
        console.print(f"[bold green]NetPulse is up[/bold green] at {url}  (Redis: {redis_url})")
        console.print(f"API key: {api_key}")
        console.print(f"Dashboard: {url}/ui (log in with the API key)", markup=False)
        if devices:
            print_inventory(console, devices)
        example = devices[0] if devices else None
        args = (
            example.connection_args()
            if example
            else {"device_type": "cisco_ios", "host": "192.0.2.1", "username": "admin"}
        )
        body = (
            '{"driver": "netmiko", "connection_args": '
            + json.dumps(args)
            + ', "command": "show version", "enable_mode": true}'
        )
        console.print("Try:", style="bold")
        console.print(
            f"curl -s -X POST {url}/device/exec -H '{header}: {api_key}' "
            f"-H 'Content-Type: application/json' -d '{body}'",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            f"curl -s '{url}/jobs/<id>?wait=30' -H '{header}: {api_key}'",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        console.print("[ready]", markup=False)
        sys.stdout.flush()
