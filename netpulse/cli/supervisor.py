"""`netpulse up`: start and watch every process of a one-machine NetPulse.

Order: private Redis (only when no Redis URL is configured), lab devices (``--lab``), then the
controller, the FIFO worker pool and the webhook delivery service as child processes that read
the same settings from their environment. Ctrl-C (or SIGTERM) stops them in reverse order.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from netpulse.config import Settings

READY_TIMEOUT = 60.0
#: A node finishes running jobs for up to 30 s on SIGTERM; give it that and a margin.
CHILD_STOP_TIMEOUT = 45.0


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


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        lab: bool = False,
        host: str | None = None,
        port: int | None = None,
        workers: int | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.lab = lab
        self.host = host or settings.server.host
        self.port = port or settings.server.port
        self.workers = workers or settings.worker.pool_size
        self.data_dir = (data_dir or settings.data_dir).resolve()
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stop_requested = threading.Event()

    def _env(self, redis_url: str, api_key: str) -> dict[str, str]:
        env = dict(os.environ)
        env["NETPULSE_REDIS__URL"] = redis_url
        env["NETPULSE_SERVER__API_KEY"] = api_key
        env["NETPULSE_DATA_DIR"] = str(self.data_dir)
        return env

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        process = subprocess.Popen(
            [sys.executable, "-m", "netpulse", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.children.append((name, process))

    def _wait_ready(self, url: str) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            for name, process in self.children:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {process.returncode}; see {self.data_dir}/{name}.log"
                    )
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            self.stop_requested.wait(0.1)
        return False

    def _stop_children(self) -> None:
        for _, process in reversed(self.children):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + CHILD_STOP_TIMEOUT
        for _, process in reversed(self.children):
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def run(self, console: Console) -> int:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop_requested.set())
        redis = None
        fleet = None
        code = 0
        try:
            redis_url = self.settings.redis.url
            if not redis_url:
                from netpulse.runtime.redis_server import RedisServer

                redis = RedisServer(data_dir=self.data_dir / "redis", appendonly=True)
                (self.data_dir / "redis").mkdir(exist_ok=True)
                redis_url = redis.start()
            api_key = (
                self.settings.server.api_key.get_secret_value()
                if self.settings.server.api_key
                else load_or_create_api_key(self.data_dir)
            )
            env = self._env(redis_url, api_key)
            self._spawn(
                "controller", ["controller", "--host", self.host, "--port", str(self.port)], env
            )
            self._spawn("worker-fifo", ["worker", "fifo", "--size", str(self.workers)], env)
            self._spawn("worker-node", ["worker", "node", "--name", "local"], env)
            self._spawn("worker-webhooks", ["worker", "webhooks"], env)
            devices = []
            if self.lab:
                from netpulse.lab.fleet import LabFleet

                fleet = LabFleet()
                devices = fleet.start()
                inventory = [{"name": d.name, **d.connection_args()} for d in devices]
                (self.data_dir / "lab-inventory.json").write_text(json.dumps(inventory, indent=2))
            url = f"http://{self.host}:{self.port}"
            if not self._wait_ready(url):
                if not self.stop_requested.is_set():
                    console.print(f"[red]the controller did not answer at {url}[/red]")
                    code = 1
                return code
            self._announce(console, url, api_key, redis_url, devices)
            while not self.stop_requested.is_set():
                for name, process in self.children:
                    if process.poll() is not None:
                        console.print(
                            f"[red]{name} exited ({process.returncode}); stopping. "
                            f"See {self.data_dir}/{name}.log[/red]"
                        )
                        return 1
                self.stop_requested.wait(0.5)
            return code
        except RuntimeError as exc:
            console.print(f"[red]{exc}[/red]")
            return 1
        finally:
            console.print("stopping NetPulse ...")
            self._stop_children()
            if fleet is not None:
                fleet.stop()
            if redis is not None:
                redis.stop()
            console.print("stopped.")

    def _announce(
        self, console: Console, url: str, api_key: str, redis_url: str, devices: list[Any]
    ) -> None:
        header = self.settings.server.api_key_header
        console.print(f"[bold green]NetPulse is up[/bold green] at {url}  (Redis: {redis_url})")
        console.print(f"API key: {api_key}")
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
