"""Start and stop a NetPulse benchmark stack, and shared benchmark helpers.

A :class:`Stack` is a private ``redis-server``, the controller, a FIFO worker pool of N
processes and the webhook delivery service, all on 127.0.0.1, with their logs in a temporary
directory. :class:`Fleet` runs FakeNOS devices in a child process and :class:`HookReceiver`
runs ``bench/receiver.py`` (a fast healthy receiver plus a never-answering one). Everything
started here is stopped on exit, on Ctrl-C and on SIGTERM; every wait is bounded.

Only loopback addresses are ever contacted.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from netpulse.runtime.ports import free_port  # noqa: E402
from netpulse.runtime.redis_conn import connect  # noqa: E402
from netpulse.runtime.redis_server import RedisServer  # noqa: E402

API_KEY = "bench-api-key-0123456789abcdef"
SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
FINAL = ("finished", "failed", "stopped", "canceled")

#: What a lab device's entry holds that NetPulse's ``connection_args`` take.
CONN_KEYS = ("device_type", "host", "port", "username", "password", "secret")


def conn_args(dev: dict[str, Any]) -> dict[str, Any]:
    """``connection_args`` for a lab device (an entry of :class:`Fleet`'s ``devices``)."""
    return {k: dev[k] for k in CONN_KEYS if dev.get(k) is not None}


# -- cleanup of everything we started -------------------------------------------------------

_CLEANUPS: list[Callable[[], None]] = []


def _run_cleanups() -> None:
    while _CLEANUPS:
        fn = _CLEANUPS.pop()
        try:
            fn()
        except Exception as exc:  # keep cleaning up the rest
            print(f"[bench] cleanup failed: {exc}", file=sys.stderr)


def _on_signal(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


atexit.register(_run_cleanups)
signal.signal(signal.SIGTERM, _on_signal)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- child processes ------------------------------------------------------------------------


class Child:
    """A child process in its own session (its process group is ours to kill)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_path: Path,
        stdin_pipe: bool = False,
        stdout_pipe: bool = False,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._log,
            stderr=self._log,
            start_new_session=True,
            cwd=str(ROOT),
        )
        _CLEANUPS.append(self.stop)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def read_json_line(self, timeout: float) -> Any:
        """The first stdout line as JSON (a child announcing its ports); bounded."""
        import selectors

        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self.alive():
                raise RuntimeError(f"{self.name} did not start in {timeout} s; see {self.log_path}")
            if sel.select(min(left, 0.5)):
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    raise RuntimeError(f"{self.name} exited; see {self.log_path}")
                buf += chunk
        sel.close()
        return json.loads(buf.split(b"\n", 1)[0])

    def stop(self, timeout: float = 15) -> None:
        if self.stop in _CLEANUPS:
            _CLEANUPS.remove(self.stop)
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # Anything left in its process group (RQ pool children) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._log.close()


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time a process has used so far (Linux /proc); with ``children``,
    plus that of its children it has waited for (RQ work-horses, for a worker)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    used = int(fields[11]) + int(fields[12])
    if children:
        used += int(fields[13]) + int(fields[14])
    return used / ticks


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval=0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


def _http_ready(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# -- the NetPulse stack ---------------------------------------------------------------------


class Stack:
    """Private redis + controller + FIFO pool of ``fifo_workers`` + delivery service."""

    def __init__(
        self,
        fifo_workers: int = 4,
        delivery: bool = True,
        extra_env: dict[str, str] | None = None,
        workdir: Path | None = None,
        appendonly: bool = False,
        redis_url: str | None = None,
    ) -> None:
        #: With an append-only file the private Redis keeps its data across a restart
        #: (bench/faults.py restarts it); off by default, as it costs a little speed.
        self.appendonly = appendonly
        #: An external Redis (a Sentinel set's URL): then no private redis-server is started.
        self.external_redis_url = redis_url
        self.fifo_workers = fifo_workers
        self.with_delivery = delivery
        self.extra_env = extra_env or {}
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="netpulse-bench-"))
        self.redis_server: RedisServer | None = None
        self.controller: Child | None = None
        self.workers: Child | None = None
        self.delivery: Child | None = None
        self.url = ""
        self.env: dict[str, str] = {}
        self.api: httpx.Client | None = None
        self.redis: Redis | None = None

    def start(self) -> Stack:
        _CLEANUPS.append(self.stop)
        started = time.monotonic()
        if self.external_redis_url is None:
            self.redis_server = RedisServer(
                data_dir=self.workdir / "redis", appendonly=self.appendonly
            )
            redis_url = self.redis_server.start()
        else:
            redis_url = self.external_redis_url
        self.redis = connect(redis_url)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "NETPULSE_REDIS__URL": redis_url,
            "NETPULSE_SERVER__API_KEY": API_KEY,
            "NETPULSE_DATA_DIR": str(self.workdir),
            "NETPULSE_WEBHOOKS__ALLOW_CIDRS": '["127.0.0.0/8"]',
            "NETPULSE_WEBHOOKS__SIGNING_SECRET": SIGNING_SECRET,
            "NETPULSE_LOG_LEVEL": "INFO",
            **self.extra_env,
        }
        # This process records events itself (webhooks bench): same settings as the services.
        for key, value in self.env.items():
            if key.startswith("NETPULSE_"):
                os.environ[key] = value
        from netpulse.config import get_settings

        get_settings.cache_clear()

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.controller = self._netpulse(
            "controller", ["controller", "--host", "127.0.0.1", "--port", str(port)]
        )
        self.workers = self._netpulse("fifo", ["worker", "fifo", "--size", str(self.fifo_workers)])
        if self.with_delivery:
            self.start_delivery()
        wait_until(lambda: _http_ready(self.url), 60, "the controller")
        wait_until(lambda: self.worker_count() >= self.fifo_workers, 90, "the FIFO workers")
        self.api = httpx.Client(base_url=self.url, headers={"X-API-KEY": API_KEY}, timeout=90)
        log(
            f"stack up in {time.monotonic() - started:.1f} s: {self.url}, "
            f"{self.fifo_workers} FIFO workers, delivery={'on' if self.with_delivery else 'off'}, "
            f"logs in {self.workdir}"
        )
        return self

    def _netpulse(self, name: str, args: list[str]) -> Child:
        return Child(
            name,
            [sys.executable, "-m", "netpulse", *args],
            self.env,
            self.workdir / f"{name}.log",
        )

    def worker_count(self) -> int:
        from rq import Worker

        assert self.redis is not None
        return len(Worker.all(connection=self.redis))

    def fifo_cpu_seconds(self) -> float:
        """CPU used so far by the FIFO workers and their finished work-horses."""
        from rq import Worker

        assert self.redis is not None
        return sum(cpu_seconds(w.pid, children=True) for w in Worker.all(connection=self.redis))

    def start_delivery(self) -> None:
        self.delivery = self._netpulse("webhooks", ["worker", "webhooks"])
        wait_until(
            lambda: (
                "delivery service started" in self.delivery.log_path.read_text(errors="replace")
            ),
            30,
            "the webhook delivery service",
        )

    def stop_delivery(self) -> None:
        if self.delivery is not None:
            self.delivery.stop()
            self.delivery = None

    def stop(self) -> None:
        if self.stop in _CLEANUPS:
            _CLEANUPS.remove(self.stop)
        if self.api is not None:
            self.api.close()
            self.api = None
        for child in (self.delivery, self.workers, self.controller):
            if child is not None:
                child.stop()
        self.delivery = self.workers = self.controller = None
        if self.redis is not None:
            self.redis.close()
            self.redis = None
        if self.redis_server is not None:
            self.redis_server.stop()
            self.redis_server = None
        if self._own_dir and os.environ.get("BENCH_KEEP_LOGS") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- jobs ----------------------------------------------------------------------------------

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self.api is not None
        reply = self.api.post("/device/exec", json=body)
        if reply.status_code != 201:
            raise RuntimeError(f"submit failed: {reply.status_code} {reply.text}")
        return reply.json()

    def wait_job(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        """Wait for the job's end with the server-side wait; bounded by ``timeout``."""
        assert self.api is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            reply = self.api.get(f"/jobs/{job_id}", params={"wait": max(min(left, 60), 0.1)})
            reply.raise_for_status()
            job = reply.json()
            if job["status"] in FINAL:
                return job
            if left <= 0:
                raise RuntimeError(f"job {job_id} still {job['status']} after {timeout} s")


class Fleet:
    """FakeNOS devices in a child process (``bench/fleet_proc.py``)."""

    def __init__(self, platform: str = "cisco_ios", count: int = 20) -> None:
        self.platform, self.count = platform, count
        self.devices: list[dict[str, Any]] = []
        self.child: Child | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="netpulse-bench-fleet-"))

    def __enter__(self) -> Fleet:
        started = time.monotonic()
        self.child = Child(
            "fleet",
            [
                sys.executable,
                str(BENCH_DIR / "fleet_proc.py"),
                "--platform",
                self.platform,
                "--count",
                str(self.count),
            ],
            {**os.environ, "PYTHONPATH": str(ROOT)},
            self._dir / "fleet.log",
            stdin_pipe=True,
            stdout_pipe=True,
        )
        self.devices = self.child.read_json_line(timeout=90)
        log(f"fleet up in {time.monotonic() - started:.1f} s: {len(self.devices)} {self.platform}")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.child is not None:
            self.child.stop(timeout=30)
            self.child = None
        shutil.rmtree(self._dir, ignore_errors=True)


class HookReceiver:
    """``bench/receiver.py`` in a child process: a fast healthy receiver and a hanging one."""

    def __init__(self) -> None:
        self.child: Child | None = None
        self.healthy_port = self.hang_port = 0
        self._dir = Path(tempfile.mkdtemp(prefix="netpulse-bench-recv-"))
        self.client = httpx.Client(timeout=30, trust_env=False)

    def __enter__(self) -> HookReceiver:
        self.child = Child(
            "receiver",
            [sys.executable, str(BENCH_DIR / "receiver.py")],
            dict(os.environ),
            self._dir / "receiver.log",
            stdin_pipe=True,
            stdout_pipe=True,
        )
        ports = self.child.read_json_line(timeout=30)
        self.healthy_port, self.hang_port = ports["healthy"], ports["hang"]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.client.close()
        if self.child is not None:
            self.child.stop()
            self.child = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.healthy_port}{path}"

    def hang_url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.hang_port}{path}"

    def records(self) -> list[tuple[str | None, float, str]]:
        reply = self.client.get(self.url("/_records"))
        reply.raise_for_status()
        return [tuple(r) for r in reply.json()["records"]]  # type: ignore[misc]

    def hang_stats(self) -> dict[str, int]:
        return self.client.get(self.url("/_hang")).json()

    def reset(self) -> None:
        self.client.post(self.url("/_reset")).raise_for_status()

    def wait_count(
        self, count: int, timeout: float, path_prefix: str = "/"
    ) -> list[tuple[str | None, float, str]]:
        """Poll (bounded) until ``count`` records whose path starts with ``path_prefix``."""
        deadline = time.monotonic() + timeout
        while True:
            got = [r for r in self.records() if r[2].startswith(path_prefix)]
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.1)


# -- numbers and the results file ------------------------------------------------------------


def parse_ts(value: str) -> float:
    """An API timestamp as Unix seconds (naive values are UTC)."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def percentile(values: Iterable[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    data = sorted(values)
    if not data:
        return float("nan")
    rank = max(1, min(len(data), -(-len(data) * p // 100)))
    return data[int(rank) - 1]


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), e.g. "AMD EPYC"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    return (
        f"nproc={os.cpu_count()}, {cpu_model()}, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def git_output(*args: str) -> str:
    """What ``git <args>`` prints in /work/main (stripped), or "unknown" when git fails."""
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def git_head() -> str:
    """The short commit of /work/main's HEAD (other engineers' uncommitted edits aside)."""
    return git_output("rev-parse", "--short", "HEAD")


def command_line() -> str:
    python = (
        os.path.relpath(sys.executable, ROOT)
        if sys.executable.startswith(str(ROOT))
        else sys.executable
    )
    script = os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)
    return " ".join(["cd /work/main &&", python, script, *sys.argv[1:]])


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table (also readable on a terminal)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


def update_results(section: str, body: str) -> None:
    """Replace (or append) the section ``section`` of bench/RESULTS.md."""
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else "# NetPulse benchmark results\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS_MD.write_text(text)


def write_section(section: str, title: str, elapsed: float, *parts: str) -> None:
    """Write a benchmark's section of bench/RESULTS.md: header (date, machine, command, run
    time, load), then ``parts`` separated by blank lines."""
    update_results(section, section_header(title, elapsed) + "\n" + "\n\n".join(parts))
    log("bench/RESULTS.md updated")


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


LOAD_AT_START = load_average()


def section_header(title: str, elapsed: float) -> str:
    return (
        f"## {title}\n\n"
        f"- Date: {datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}\n"
        f"- Machine: {machine()}\n"
        f"- Command: `{command_line()}`\n"
        f"- Script run time: {elapsed:.0f} s; load average (1/5/15 min) at start "
        f"{LOAD_AT_START}, at end {load_average()} (other work on the machine skews figures)\n"
    )


#: The 1-minute load average a benchmark waits for before it measures.
LOAD_LIMIT = 1.5


def wait_for_quiet(max_wait: float = 600, interval: float = 30) -> dict[str, Any]:
    """Wait (bounded) until the 1-minute load average is at most LOAD_LIMIT."""
    first = load_average()
    started = time.monotonic()
    while os.getloadavg()[0] > LOAD_LIMIT:
        waited = time.monotonic() - started
        if waited >= max_wait:
            log(f"load still {load_average()} after {waited:.0f} s: running anyway")
            break
        log(f"load average {load_average()} > {LOAD_LIMIT}: waiting {interval:.0f} s")
        time.sleep(interval)
    return {"first": first, "waited": time.monotonic() - started, "start": load_average()}
