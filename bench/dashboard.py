"""Dashboard benchmark (issue 16): the jobs page with 10,000 jobs in Redis.

    cd /work/main && .venv/bin/python bench/dashboard.py [--jobs 10000] [--requests 40]
        [--max-load 1.0] [--no-write]

1. A stack of bench/common.py (private Redis, controller, one FIFO worker, no delivery
   service) and --jobs finished jobs put straight into Redis as RQ stores them (the job hash
   with the request and ``meta`` of a real submission, its result, the finished registry):
   70 % in ``FifoQ``, 30 % in ``NodeQ_bench``, one device host of 10 and one key of 3 each
   (a host's jobs all in one queue, as a pinned device's are), one second apart. No worker
   runs them: what is measured is reading them back.
2. A dashboard session (``POST /ui/login`` with the API key), then 3 unmeasured rounds and
   --requests measured ones, each one request per page below in turn (a burst of other work
   on the machine falls on every page alike), one after another on one keep-alive client.
   The figure is the server's own time (``Server-Timing: app;dur=``, set by
   ``api/ui/render.py``'s ``UiRoute`` around the whole route: the session check, the reads,
   the template); the client's round trip is reported beside it.
3. Per page, the Redis commands one render sends (``INFO commandstats`` before and after
   one request; the controller is the only client then), to show that a page reads the
   newest jobs, not all of them.

Target: the jobs page (the newest 50) in under 300 ms server time at the 95th percentile,
with and without filters.
The script first waits (bounded) until no other benchmark runs and the 1-minute load average
is below --max-load. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    API_KEY,
    Stack,
    load_average,
    log,
    median,
    percentile,
    table,
    write_section,
)

HOSTS = [f"10.0.{i}.1" for i in range(10)]
KEYS = ["ops", "collector", "default"]
QUEUES = [("FifoQ", 0.7), ("NodeQ_bench", 0.3)]
STDOUT = "Cisco IOS XE Software, Version 17.03.01a\n" + "interface GigabitEthernet0/1 up\n" * 30
TARGET_MS = 300.0
_TIMING = re.compile(r"app;dur=([0-9.]+)")


def other_benchmarks() -> list[str]:
    """Command lines of other ``bench/*.py`` processes (never run two benchmarks at once)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = [a.decode(errors="replace") for a in argv if a]
        if any(re.search(r"(^|/)bench/\w+\.py$", a) for a in text) and "dashboard.py" not in (
            " ".join(text)
        ):
            found.append(" ".join(text))
    return found


def wait_until_quiet(max_load: float, max_wait: float) -> tuple[float, str]:
    """Wait (bounded) for no other benchmark and a 1-minute load below ``max_load``."""
    started = time.monotonic()
    while True:
        others = other_benchmarks()
        load = os.getloadavg()[0]
        if not others and load < max_load:
            return time.monotonic() - started, load_average()
        if time.monotonic() - started > max_wait:
            raise SystemExit(
                f"still busy after {max_wait:.0f} s (load {load_average()}, other benchmarks: "
                f"{others or 'none'}); not measuring"
            )
        log(f"waiting: load {load_average()}, other benchmarks {len(others)}")
        time.sleep(30)


def seed(conn: Any, count: int) -> float:
    """Put ``count`` finished jobs into Redis as RQ stores them; seconds it took."""
    from rq import Queue
    from rq.job import Job, JobStatus
    from rq.results import Result

    from netpulse.models.request import ExecutionRequest

    started = time.monotonic()
    req = ExecutionRequest.model_validate(
        {
            "driver": "netmiko",
            "connection_args": {"device_type": "cisco_ios", "host": HOSTS[0], "username": "u"},
            "command": "show version",
        }
    )
    now = datetime.now(UTC)
    queues = {name: Queue(name, connection=conn) for name, _ in QUEUES}
    pipe = conn.pipeline(transaction=False)
    for name in queues:
        pipe.sadd(Queue.redis_queues_keys, queues[name].key)
    for i in range(count):
        name = QUEUES[0][0] if (i % 10) < QUEUES[0][1] * 10 else QUEUES[1][0]
        host = HOSTS[i % len(HOSTS)]
        created = now - timedelta(seconds=count - i)
        job = Job.create(
            "netpulse.worker.task.run_device_job",
            kwargs={"req": req},
            connection=conn,
            id=str(uuid.uuid4()),
            origin=name,
            result_ttl=86400,
            description=f"netmiko 'show version' on {host}",
            meta={
                "host": host,
                "device_type": "cisco_ios",
                "device_name": host,
                "command": ["show version"],
                "task_id": None,
                "driver": "netmiko",
                "device": f"{host}:22",
                "strategy": "fifo" if name == "FifoQ" else "pinned",
                "submitted_by": KEYS[i % len(KEYS)],
            },
        )
        job.created_at = created
        job.enqueued_at = created
        job.started_at = created + timedelta(milliseconds=5)
        job.ended_at = created + timedelta(milliseconds=250)
        job.worker_name = "bench.0"
        job.set_status(JobStatus.FINISHED, pipeline=pipe)
        job.save(pipeline=pipe)
        Result.create(
            job,
            Result.Type.SUCCESSFUL,
            ttl=86400,
            return_value=[
                {
                    "command": "show version",
                    "stdout": STDOUT,
                    "stderr": "",
                    "exit_status": 0,
                    "metadata": {"host": host, "driver": "netmiko", "session_reused": i % 2 == 0},
                }
            ],
            pipeline=pipe,
        )
        queues[name].finished_job_registry.add(job, 86400, pipeline=pipe)
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()
    return time.monotonic() - started


def commands(conn: Any) -> dict[str, int]:
    stats = conn.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def timed_get(client: Any, path: str) -> tuple[float, float, Any]:
    """One request: the server's own time, the client's round trip (ms), the reply."""
    started = time.perf_counter()
    reply = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if reply.status_code != 200:
        raise RuntimeError(f"{path}: {reply.status_code} {reply.text[:200]}")
    match = _TIMING.search(reply.headers.get("server-timing", ""))
    if match is None:
        raise RuntimeError(f"{path}: no Server-Timing header")
    return float(match.group(1)), elapsed, reply


def measure(client: Any, paths: list[str], runs: int) -> dict[str, dict[str, Any]]:
    """``runs`` rounds, each one request per page in turn (3 unmeasured rounds first), so a
    burst of other work on the machine falls on every page alike."""
    figures: dict[str, dict[str, Any]] = {p: {"server": [], "rtt": []} for p in paths}
    for i in range(runs + 3):
        for path in paths:
            server, rtt, reply = timed_get(client, path)
            if i >= 3:
                figures[path]["server"].append(server)
                figures[path]["rtt"].append(rtt)
            figures[path]["rows"] = reply.text.count('<tr id="job-')
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--max-load", type=float, default=1.0)
    parser.add_argument("--max-wait", type=float, default=1800)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    run_started = time.monotonic()
    waited, load_before = wait_until_quiet(args.max_load, args.max_wait)
    log(f"load {load_before} (waited {waited:.0f} s)")

    import httpx

    with Stack(fifo_workers=1, delivery=False) as stack:
        assert stack.redis is not None
        seconds = seed(stack.redis, args.jobs)
        log(f"{args.jobs} finished jobs in Redis in {seconds:.1f} s")
        counts = stack.api.get("/system/stats").json()["jobs"]  # type: ignore[union-attr]
        with httpx.Client(base_url=stack.url, timeout=30, follow_redirects=False) as client:
            login = client.post("/ui/login", data={"api_key": API_KEY})
            assert login.status_code == 303, login.text
            pages = [
                ("jobs page, newest 50, no filter", "/ui/jobs"),
                ("its 2 s refresh (rows only)", "/ui/jobs/rows"),
                ("status=finished", "/ui/jobs?status=finished"),
                (f"host={HOSTS[3]} (1 job in 10, all in FifoQ)", f"/ui/jobs?host={HOSTS[3]}"),
                ("host=192.0.2.99 (no job)", "/ui/jobs?host=192.0.2.99"),
                ("queue=NodeQ_bench", "/ui/jobs?queue=NodeQ_bench"),
                ("key=ops (1 job in 3)", "/ui/jobs?key=ops"),
            ]
            used_by: dict[str, dict[str, int]] = {}
            for _, path in pages:
                before = commands(stack.redis)
                client.get(path)
                after = commands(stack.redis)
                used = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                used_by[path] = {k: v for k, v in used.items() if v > 0 and k != "info"}
            load_at = load_average()
            measured = measure(client, [path for _, path in pages], args.requests)
            load_after = load_average()
            results = []
            for label, path in pages:
                figures = {**measured[path], "commands": used_by[path]}
                results.append((label, path, figures))
                log(
                    f"{label}: server median {median(figures['server']):.1f} ms, "
                    f"p95 {percentile(figures['server'], 95):.1f} ms, "
                    f"{figures['rows']} rows, hgetall {used_by[path].get('hgetall', 0)}"
                )

    rows = []
    for label, path, f in results:
        server_med, server_p95 = median(f["server"]), percentile(f["server"], 95)
        jobs_read = f["commands"].get("hgetall", 0)
        verdict = "PASS" if server_p95 < TARGET_MS else "FAIL"
        rows.append(
            [
                f"`{path}`: {label}",
                f"{f['rows']}",
                f"{server_med:.1f} / {server_p95:.1f} / {max(f['server']):.1f}",
                f"{median(f['rtt']):.1f}",
                f"{jobs_read}",
                f"{sum(f['commands'].values())}",
                f"p95 < {TARGET_MS:.0f} ms",
                verdict,
            ]
        )
    headers = [
        "Page",
        "Rows shown",
        "Server time median / p95 / max (ms)",
        "Client round trip median (ms)",
        "Job hashes read (HGETALL)",
        "Redis commands per render",
        "Target",
        "Verdict",
    ]
    top = "\n".join(
        f"  - `{path}`: "
        + ", ".join(f"{k} {v}" for k, v in sorted(f["commands"].items(), key=lambda kv: -kv[1])[:6])
        for _, path, f in results
    )
    notes = [
        f"- Jobs in Redis: {args.jobs} finished (seeded in {seconds:.1f} s), "
        f"`/system/stats` counted {counts}; {args.requests} measured rounds after 3 "
        "unmeasured, each one request per page in turn, one after another on one keep-alive "
        "client with a dashboard session.",
        f"- Load average before the stack: {load_before} (waited {waited:.0f} s for < "
        f"{args.max_load}); during the measurements: {load_at} at the start, {load_after} at "
        "the end.",
        "- Server time: `Server-Timing: app;dur=` of the dashboard's route class (session "
        "check, reads, rendering). Jobs are found by `dispatch.jobs.find_jobs` queue by "
        "queue, which reads each registry's ids and then the jobs 200 at a time "
        "(`FETCH_CHUNK`) until the page is full (a host or key filter: the newest 400 of "
        "each queue, then filtered); `api.views.listed` then reads each shown job's result "
        "(one XREVRANGE each). Seeded jobs: host i mod 10, in FifoQ when i mod 10 < 7 (so a "
        "host's jobs are all in one queue, as a pinned device's are), key i mod 3.",
        "- The largest Redis commands of one render:\n" + top,
    ]
    text = table(headers, rows) + "\n\n" + "\n".join(notes)
    print(text)
    if not args.no_write:
        write_section(
            "dashboard",
            "Dashboard (issue 16) (bench/dashboard.py)",
            time.monotonic() - run_started,
            text,
        )


if __name__ == "__main__":
    main()
