"""Webhook benchmarks (issue 3): latency, sustained delivery, isolation, fairness; and
webhook endpoints (issue 15): fan-out, payload template cost, latency with subscriptions.

    cd /work/main && .venv/bin/python bench/webhooks.py [--latency-jobs 200] [--latency-rate 20]
        [--sustained-events 10000] [--throughput-jobs 200] [--isolation-rounds 5]
        [--fairness-jobs 800] [--fairness-seconds 40] [--fairness-rate 10]
        [--endpoints 10] [--fanout-events 2000] [--template-deliveries 3000]
        [--template-rounds 8] [--endpoint-latency-jobs 200]
        [--workers 8] [--only NAME ...] [--no-write]

    cd /work/main && .venv/bin/python bench/webhooks.py --only fanout template endpoint_latency

The run first waits (bounded) for the machine's 1-minute load to fall to LOAD_LIMIT.

Every section runs on a fresh stack (private redis, controller, FIFO pool, delivery service),
so pending retries of one section cannot disturb the next. The receiver is bench/receiver.py
in its own process: a raw asyncio/uvloop HTTP server (httptools parser, keep-alive) that
answers 200 at once and records (webhook-id, arrival time) -- far faster than the delivery
service, so it is not the bottleneck -- plus a "hanging" server that accepts TCP and never
answers. Device jobs are paramiko jobs to closed ports of 127.0.0.1: they fail at once
(connection refused) and still produce a ``job.failed`` event. Each port is its own "device"
for NetPulse's per-device FIFO limit (``node.fifo_concurrency``, 2), so the jobs are spread
round-robin over --devices closed ports.

0. Before anything: the delivery service's fast dependencies must be in use, or the run stops
   with an error: uvloop (its event loop), hiredis (redis-py's parser) and aiohttp with its C
   HTTP parser (GuardedSender). Checked in this process (they import; redis-py and aiohttp
   pick them; versions reported) and in every delivery service started (/proc/<pid>/maps
   holds their shared objects; after the measurements, ``py-spy dump`` shows uvloop.run).
1. latency: N jobs, each with a webhook to the healthy receiver; latency = receiver arrival
   time - the job's ``ended_at`` (GET /jobs/{id}), split at the delivery record's
   ``created_at``. Two runs on one stack: submitted back to back (a stress run: it saturates
   the 2 cores) and paced at --latency-rate jobs/s (default 20; the run the target is judged
   on). Target: median <= 5 ms, p99 <= 20 ms.
2. sustained: N events recorded straight into Redis with
   ``netpulse.webhooks.outbox.record_final_event`` (pipelined, while the delivery service
   runs); rate = N / (last arrival - first record). Counts distinct webhook-id values
   (none may be lost) and duplicates; the delivery service's CPU per event (/proc), printed
   with the CPU model. Target: >= 1,500 events/s, <= 0.5 ms of service CPU per event.
3. isolation: device job throughput with every job's webhook pointing at the hanging
   receiver (timeout 5 s) vs. no webhook; jobs submitted in one ``POST /device/bulk``;
   throughput = N / (last ended_at - first enqueued_at); runs interleaved (none, hang, and a
   healthy-webhook control; order rotated each round), median of --isolation-rounds each.
   Also reports the CPU the delivery service and the FIFO workers (with their work-horses)
   used per run. Target: ratio >= 0.95.
4. fairness: jobs with 3 of every 4 webhooks to the hanging receiver and 1 of 4 to the
   healthy one, interleaved: a burst of --fairness-jobs (the hanging ones outnumber the
   service's max_in_flight, 256), then --fairness-rate jobs/s for --fairness-seconds, long
   enough to span the hanging origin's back-off (30 s) and first retries (5 s). Reports the
   max delay (arrival - job end) of the healthy ones. Target: every one within 1 s.
5. fanout: --endpoints endpoints (``POST /webhooks/endpoints``, no filter: every job event)
   to distinct paths of the healthy receiver; N events recorded as in ``sustained``, each
   with its own webhook too, so N * (endpoints + 1) deliveries, each its own webhook-id
   (``msg_<job hex>_<endpoint id>`` for an endpoint's). Rate = distinct deliveries received
   / (last arrival - first record); none may be lost, duplicated or sent to another
   endpoint's path. Target: >= 1,500 deliveries/s.
6. template: the delivery service's CPU per delivery (/proc) for runs of deliveries to an
   endpoint with a Slack-like payload template vs the same without one (two endpoints told
   apart by a ``hosts`` filter; events without a webhook of their own), alternated A B / B A
   for --template-rounds rounds; median of the per-round differences. Cross-check: the CPU
   time of ``render_body`` in this process (timeit). Target: <= 0.3 ms more per delivery.
7. endpoint_latency: as ``latency``, with --endpoints endpoints subscribed to every event;
   median and p99 of job end -> arrival of the endpoint deliveries and of the job's own
   webhook, and a control run without endpoints on the same stack. Target: median < 20 ms.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.common as common
from bench.common import (
    LOAD_LIMIT,
    ROOT,
    HookReceiver,
    Stack,
    cpu_model,
    cpu_seconds,
    git_head,
    log,
    machine,
    median,
    parse_ts,
    percentile,
    table,
    wait_for_quiet,
    write_section,
)
from netpulse.runtime.ports import free_ports
from netpulse.webhooks import store

#: The webhook endpoint sections (issue 15); the others are issue 3's.
ENDPOINT_SECTIONS = ("fanout", "template", "endpoint_latency")
SECTIONS = ("latency", "sustained", "isolation", "fairness", *ENDPOINT_SECTIONS)


# -- the delivery service's dependencies ------------------------------------------------------

#: What the delivery service needs to be fast, and the shared object each one maps into a
#: process that imported it: uvloop (its event loop: netpulse/runtime/eventloop.py), hiredis
#: (redis-py's reply parser) and aiohttp with its C HTTP parser (the built-in caller sends
#: through bare aiohttp: netpulse/net/client.py GuardedSender).
SERVICE_LIBRARIES = {
    "uvloop": "/uvloop/loop.",
    "hiredis": "/hiredis/hiredis.",
    "aiohttp": "/aiohttp/_http_parser.",
}


class DependencyMissing(SystemExit):
    """The delivery service would run (or runs) without one of its fast dependencies."""


def check_local_dependencies() -> dict[str, str]:
    """Import the service's fast dependencies in this process (same interpreter and venv as
    the service) and check that redis-py and aiohttp pick them: their versions. Exits with
    a message naming what is missing."""
    from importlib import metadata

    versions: dict[str, str] = {}
    problems: list[str] = []
    for name in (*SERVICE_LIBRARIES, "redis"):
        try:
            importlib.import_module(name)
            versions[name] = metadata.version(name)
        except (ImportError, metadata.PackageNotFoundError) as exc:
            problems.append(f"{name} does not import here: {exc}")
    if "redis" in versions:
        import redis.asyncio.connection as async_connection
        import redis.connection as sync_connection

        parsers = (async_connection.DefaultParser, sync_connection.DefaultParser)
        versions["redis parser"] = " / ".join(p.__name__ for p in parsers)
        if "Hiredis" not in versions["redis parser"].split(" / ")[0]:
            problems.append(f"redis-py's default parser is {versions['redis parser']}, not hiredis")
    if "aiohttp" in versions:
        from aiohttp import http_parser

        module = http_parser.HttpResponseParser.__module__
        versions["aiohttp parser"] = module
        if module != "aiohttp._http_parser":
            problems.append(
                f"aiohttp parses responses with {module} (pure Python), not its C parser "
                "(AIOHTTP_NO_EXTENSIONS set?)"
            )
    if problems:
        raise DependencyMissing("bench/webhooks.py: " + "; ".join(problems))
    return versions


def service_libraries(pid: int) -> dict[str, str]:
    """The shared objects of SERVICE_LIBRARIES mapped into process ``pid`` (/proc/<pid>/maps):
    name -> path. Exits if one is missing or if the process's environment turns aiohttp's C
    extensions off."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    found: dict[str, str] = {}
    for line in maps.splitlines():
        path = line.split()[-1] if len(line.split()) >= 6 else ""
        for name, marker in SERVICE_LIBRARIES.items():
            if marker in path and path.endswith(".so"):
                found[name] = os.path.relpath(path, ROOT)
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    no_ext = [e.decode() for e in environ if e.startswith(b"AIOHTTP_NO_EXTENSIONS=")]
    missing = [name for name in SERVICE_LIBRARIES if name not in found]
    if missing or any(not e.endswith("=") for e in no_ext):
        raise DependencyMissing(
            f"bench/webhooks.py: the delivery service (pid {pid}) has not loaded "
            f"{', '.join(missing) or '-'} (found {found}; {no_ext or 'no AIOHTTP_NO_EXTENSIONS'})"
        )
    return found


def service_stack_dump(pid: int) -> dict[str, Any]:
    """Cross-check with ``py-spy dump`` (run after the measurements: it pauses the process
    for a moment): the main thread's stack must run on ``uvloop.run``. Skipped (reported)
    when py-spy is not installed or may not attach."""
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        return {"ran": False, "why": "py-spy not installed"}
    try:
        out = subprocess.run(
            [str(py_spy), "dump", "--pid", str(pid)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return {"ran": False, "why": str(exc)}
    if out.returncode != 0:
        return {"ran": False, "why": (out.stderr or out.stdout).strip()[:200]}
    frames = [line.strip() for line in out.stdout.splitlines() if line.startswith(" ")]
    uvloop_frames = [f for f in frames if "uvloop" in f]
    if not uvloop_frames:
        raise DependencyMissing(
            f"bench/webhooks.py: py-spy dump of the delivery service (pid {pid}) shows no "
            f"uvloop frame:\n{out.stdout}"
        )
    return {
        "ran": True,
        "uvloop_frames": uvloop_frames,
        "frames": len(frames),
        "threads": out.stdout.count("Thread "),
    }


#: /proc/<pid>/maps findings of every delivery service this run started.
SERVICE_CHECKS: list[dict[str, str]] = []
#: py-spy dumps of delivery services, taken after their measurements.
SERVICE_DUMPS: list[dict[str, Any]] = []


class CheckedStack(Stack):
    """A Stack whose delivery service is checked for its libraries as soon as it runs."""

    def start_delivery(self) -> None:
        super().start_delivery()
        assert self.delivery is not None
        SERVICE_CHECKS.append(service_libraries(self.delivery.pid))


def webhook_id(job_id: str) -> str:
    return "msg_" + job_id.replace("-", "")


class ClosedPorts:
    """Closed loopback ports, handed out round-robin (one simulated unreachable device each)."""

    def __init__(self, count: int) -> None:
        self.ports = free_ports(count)
        self._next = 0

    def __call__(self) -> int:
        port = self.ports[self._next % len(self.ports)]
        self._next += 1
        return port


def failing_job(port: int, webhook: dict[str, Any] | None) -> dict[str, Any]:
    """A paramiko job to a closed port: fails in about a millisecond (connection refused)."""
    body: dict[str, Any] = {
        "driver": "paramiko",
        "connection_args": {"host": "127.0.0.1", "port": port, "username": "bench", "timeout": 2},
        "command": "true",
    }
    if webhook is not None:
        body["webhook"] = webhook
    return body


def fetch_jobs(stack: Stack, ids: list[str], timeout: float = 120) -> list[dict[str, Any]]:
    """Wait for every job (server-side wait), in parallel; bounded."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda i: stack.wait_job(i, timeout=timeout), ids))


# -- 1. latency -----------------------------------------------------------------------------


def bench_latency(args: argparse.Namespace) -> dict[str, Any]:
    """Two runs on one stack: jobs submitted back to back (a stress run: it saturates the
    cores) and jobs paced at --latency-rate per second (the target's run)."""
    n, rate = args.latency_jobs, args.latency_rate
    log(
        f"latency: {n} fast-failing jobs with a webhook to the healthy receiver, back to back"
        + (f", then {n} paced at {rate:g} jobs/s" if rate else "")
    )
    runs: dict[str, dict[str, Any]] = {}
    with HookReceiver() as rx, CheckedStack(fifo_workers=args.workers) as stack:
        closed = ClosedPorts(args.devices)
        warm_up_job(stack, rx, closed)
        plan = [("back-to-back", "/lat", 0.0)] + ([("paced", "/lat-paced", rate)] if rate else [])
        for name, path, pace in plan:
            assert stack.delivery is not None
            rx.reset()
            loadavg = os.getloadavg()[0]
            cpu0, fifo0 = cpu_seconds(stack.delivery.pid), stack.fifo_cpu_seconds()
            busy0, wall0 = busy_seconds(), time.monotonic()
            jobs, records, submit_rate = latency_jobs(stack, rx, closed, n, path, rate=pace)
            wall = time.monotonic() - wall0
            busy = busy_seconds() - busy0
            time.sleep(0.3)  # let the workers reap their last work-horses
            result = latency_figures(jobs, records, delivery_times(stack, [j["id"] for j in jobs]))
            result.update(
                submit_rate=submit_rate,
                delivery_cores=(cpu_seconds(stack.delivery.pid) - cpu0) / wall,
                fifo_cores=(stack.fifo_cpu_seconds() - fifo0) / wall,
                busy_cores=busy / wall,
                load=loadavg,
            )
            runs[name] = result
            log(
                f"  {name}: median {result['median_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms "
                f"(job end -> recorded {result['to_record_median']:.1f} ms, recorded -> "
                f"received {result['to_arrival_median']:.1f} ms); submitted at "
                f"{submit_rate:.0f}/s; cores busy {result['busy_cores']:.2f}"
            )
        assert stack.delivery is not None
        SERVICE_DUMPS.append(service_stack_dump(stack.delivery.pid))
    return {"n": n, "rate": rate, "runs": runs}


def busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot (/proc/stat; idle and iowait excluded)."""
    ticks = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def job_deliveries(stack: Stack, job_ids: list[str]) -> list[tuple[str, str]]:
    """(job id, delivery id) of every delivery these jobs' events made, in one round trip."""
    assert stack.redis is not None
    pipe = stack.redis.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.smembers(store.job_key(job_id))
    return [
        (job_id, m.decode())
        for job_id, members in zip(job_ids, pipe.execute(), strict=True)
        for m in members
    ]


def delivery_times(stack: Stack, job_ids: list[str]) -> dict[str, tuple[float, float]]:
    """job id -> (recorded, finished) Unix times of its own webhook's delivery, from the
    delivery records in Redis (``created_at``: the worker recorded the event; ``updated_at``:
    the service wrote the attempt's outcome)."""
    assert stack.redis is not None
    pairs = job_deliveries(stack, job_ids)
    pipe = stack.redis.pipeline(transaction=False)
    for _, delivery_id in pairs:
        pipe.hmget(store.delivery_key(delivery_id), "created_at", "updated_at")
    out: dict[str, tuple[float, float]] = {}
    for (job_id, _), (created, updated) in zip(pairs, pipe.execute(), strict=True):
        if created and updated:
            out[job_id] = (float(created), float(updated))
    return out


def latency_figures(
    jobs: list[dict[str, Any]],
    records: list[tuple[str | None, float, str]],
    times: dict[str, tuple[float, float]],
) -> dict[str, Any]:
    """Job end -> arrival (ms), and its two parts: job end -> event recorded (the worker's
    failure callback) and recorded -> arrival (the delivery service and the HTTP request)."""
    arrivals = {r[0]: r[1] for r in records}
    total: list[float] = []
    to_record: list[float] = []
    to_arrival: list[float] = []
    missing = 0
    for job in jobs:
        got = arrivals.get(webhook_id(job["id"]))
        if got is None:
            missing += 1
            continue
        end = parse_ts(job["ended_at"])
        total.append((got - end) * 1000)
        if job["id"] in times:
            recorded = times[job["id"]][0]
            to_record.append((recorded - end) * 1000)
            to_arrival.append((got - recorded) * 1000)
    first = min(parse_ts(j["enqueued_at"]) for j in jobs)
    last = max(parse_ts(j["ended_at"]) for j in jobs)
    nan = float("nan")
    return {
        "n": len(jobs),
        "received": len(total),
        "missing": missing,
        "median_ms": median(total) if total else nan,
        "p99_ms": percentile(total, 99),
        "max_ms": max(total) if total else nan,
        "min_ms": min(total) if total else nan,
        "to_record_median": median(to_record) if to_record else nan,
        "to_record_p99": percentile(to_record, 99),
        "to_arrival_median": median(to_arrival) if to_arrival else nan,
        "to_arrival_p99": percentile(to_arrival, 99),
        "jobs_per_s": len(jobs) / (last - first),
        "queue_median_ms": median(
            j["queue_time"] * 1000 for j in jobs if j.get("queue_time") is not None
        ),
        "statuses": sorted({j["status"] for j in jobs}),
    }


def warm_up_job(stack: Stack, rx: HookReceiver, closed: ClosedPorts, deliveries: int = 1) -> None:
    """One job with a webhook to the healthy receiver, until its ``deliveries`` (its own
    webhook's and any endpoint's) are received; then the receiver's records are cleared."""
    warm = stack.submit(failing_job(closed(), {"url": rx.url("/warm")}))
    stack.wait_job(warm["id"])
    rx.wait_count(deliveries, 20)
    rx.reset()


def latency_jobs(
    stack: Stack,
    rx: HookReceiver,
    closed: ClosedPorts,
    n: int,
    path: str,
    per_job: int = 1,
    rate: float = 0,
) -> tuple[list[dict[str, Any]], list[tuple[str | None, float, str]], float]:
    """Submit ``n`` fast-failing jobs one after another (or ``rate`` per second), each with
    a webhook to ``path`` of the healthy receiver; wait for the jobs and for ``n * per_job``
    deliveries (bounded). Returns the jobs, the receiver's records and the submission rate
    (jobs/s)."""
    started = time.monotonic()
    ids = []
    for i in range(n):
        if rate:
            time.sleep(max(0.0, started + i / rate - time.monotonic()))
        ids.append(stack.submit(failing_job(closed(), {"url": rx.url(path)}))["id"])
    submit_s = time.monotonic() - started
    jobs = fetch_jobs(stack, ids)
    return jobs, rx.wait_count(n * per_job, 60), n / submit_s


# -- 2. sustained ---------------------------------------------------------------------------


def bench_request(url: str | None) -> Any:
    """The request whose webhook the recorded events go to (``url``, nothing else); with
    ``url`` None, a request without a webhook (its events go to endpoints only)."""
    from netpulse.models.request import ExecutionRequest

    body: dict[str, Any] = {
        "driver": "paramiko",
        "connection_args": {"host": "127.0.0.1", "port": 22, "username": "bench"},
        "command": "true",
    }
    if url is not None:
        body["webhook"] = {"url": url}
    return ExecutionRequest.model_validate(body)


#: The job facts of the events record_events records (``host`` is what endpoint filters see).
BENCH_META: dict[str, Any] = {
    "host": "127.0.0.1",
    "device_type": None,
    "command": ["true"],
    "driver": "paramiko",
}


def record_events(
    stack: Stack,
    url: str,
    count: int,
    batch: int = 500,
    req: Any = None,
    meta: dict[str, Any] | None = None,
) -> tuple[list[str], float]:
    """Record ``count`` final events straight into Redis, pipelined; return the job ids.
    ``req`` (a request with its webhook, sealed or not) replaces the plain one to ``url``;
    ``meta`` (the job's facts) replaces BENCH_META. Every delivery of an event (its own
    webhook's and each matching endpoint's) is one script call in the pipeline."""
    from netpulse.webhooks.outbox.record import record_final_event

    assert stack.redis is not None
    req = req if req is not None else bench_request(url)
    meta = meta if meta is not None else BENCH_META
    ids: list[str] = []
    started = time.time()
    for offset in range(0, count, batch):
        pipe = stack.redis.pipeline(transaction=False)
        for _ in range(min(batch, count - offset)):
            job_id = str(uuid.uuid4())
            now = datetime.now(UTC)
            record_final_event(
                pipe,
                job_id=job_id,
                req=req,
                status="finished",
                meta=meta,
                created_at=now,
                started_at=now,
                ended_at=now,
                retval=[{"command": "true", "stdout": "", "exit_status": 0}],
                error=None,
            )
            ids.append(job_id)
        results = pipe.execute()
        if not all(results):
            raise RuntimeError("an event was not recorded (duplicate job id?)")
    return ids, started


def pending_jobs(stack: Stack, job_ids: list[str]) -> set[str]:
    """Those of these jobs whose delivery is still pending in Redis (not lost, not failed)."""
    assert stack.redis is not None
    pairs = job_deliveries(stack, job_ids)
    pipe = stack.redis.pipeline(transaction=False)
    for _, delivery_id in pairs:
        pipe.hget(store.delivery_key(delivery_id), "state")
    states = pipe.execute()
    return {
        job_id
        for (job_id, _), state in zip(pairs, states, strict=True)
        if state == store.PENDING.encode()
    }


def bench_sustained(args: argparse.Namespace) -> dict[str, Any]:
    n = args.sustained_events
    log(f"sustained: {n} events recorded into Redis, drained to the healthy receiver")
    with HookReceiver() as rx, CheckedStack(fifo_workers=1) as stack:
        record_events(stack, rx.url("/warm"), 1)
        rx.wait_count(1, 20, "/warm")
        rx.reset()
        assert stack.redis is not None and stack.delivery is not None and rx.child is not None
        commands_before = stack.redis.info("commandstats")
        pids = {
            "delivery service": stack.delivery.pid,
            "redis": redis_pid(stack),
            "receiver": rx.child.pid,
            "benchmark (recording)": os.getpid(),
        }
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        busy0 = busy_seconds()
        target = successes(stack) + n
        ids, started = record_events(stack, rx.url("/sustained"), n)
        recorded_s = time.time() - started
        log(f"  recorded {n} events in {recorded_s:.2f} s ({n / recorded_s:.0f}/s); draining")
        # Done when the service's success counter says so (one HGET every 50 ms): fetching
        # the receiver's growing record list instead would load the receiver and this process
        # while the service works. The records are read once, afterwards.
        deadline = time.monotonic() + args.sustained_timeout
        while successes(stack) < target and time.monotonic() < deadline:
            if not stack.delivery.alive():
                log("  the delivery service process EXITED")
                break
            time.sleep(0.05)
        window = time.time() - started
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        busy = busy_seconds() - busy0
        time.sleep(1.0)  # let late duplicates (if any) arrive
        # States first, then the receiver's records: a delivery that succeeded before the
        # state query has surely reached the receiver before the records are read.
        seen = {r[0] for r in rx.records()}
        pending_ids = pending_jobs(stack, [i for i in ids if webhook_id(i) not in seen])
        records = rx.records()
        service_cpu = cpu["delivery service"]
        SERVICE_DUMPS.append(service_stack_dump(stack.delivery.pid))
        raw = stack.redis.hgetall("netpulse:wh:stats")
        stats = {k.decode(): v.decode() for k, v in raw.items()}
        commands_after = stack.redis.info("commandstats")
        calls = {
            name: commands_after.get(f"cmdstat_{name}", {}).get("calls", 0)
            - commands_before.get(f"cmdstat_{name}", {}).get("calls", 0)
            for name in ("hgetall", "zadd", "evalsha")
        }
        pending = store.pending_count(stack.redis)
        service_log = stack.delivery.log_path.read_text(errors="replace")
        exit_code = stack.delivery.proc.poll()
        got = [r[0] for r in records]
        distinct = set(got)
        undelivered = {i for i in ids if webhook_id(i) not in distinct}
        still_pending = len(undelivered & pending_ids)
    wanted = {webhook_id(i) for i in ids}
    times = sorted(r[1] for r in records)
    last = times[-1] if times else float("nan")
    return {
        "n": n,
        "received": len(got),
        "distinct": len(distinct & wanted),
        "undelivered": len(wanted - distinct),
        "still_pending": still_pending,
        "lost": len(wanted - distinct) - still_pending,
        "duplicates": len(got) - len(distinct),
        "record_rate": n / recorded_s,
        "rate_end_to_end": len(distinct & wanted) / (last - started),
        "rate_drain": len(got) / (last - times[0]) if len(times) > 1 else float("nan"),
        "seconds": last - started,
        "attempts": stats.get("attempts"),
        "attempts_success": stats.get("attempts_success"),
        "redis_calls": calls,
        "service_cpu_ms_per_event": service_cpu * 1000 / max(len(got), 1),
        "cpu_ms_per_event": {name: c * 1000 / max(len(got), 1) for name, c in cpu.items()},
        "cores": {name: c / window for name, c in cpu.items()},
        "busy_cores": busy / window,
        "window": window,
        "pending_left": pending,
        "service_exit_code": exit_code,
        "max_connections_errors": service_log.count("MaxConnectionsError: Too many connections"),
        "unexpected_errors": service_log.count("unexpected error; it returns after its lease"),
    }


# -- 3. isolation ---------------------------------------------------------------------------


def run_batch(
    stack: Stack, n: int, closed: ClosedPorts, webhook: dict[str, Any] | None
) -> dict[str, Any]:
    assert stack.api is not None
    body = failing_job(closed(), webhook)
    body["devices"] = [{"host": "127.0.0.1", "port": closed()} for _ in range(n)]
    assert stack.delivery is not None
    cpu_before = cpu_seconds(stack.delivery.pid)
    fifo_before = stack.fifo_cpu_seconds()
    reply = stack.api.post("/device/bulk", json=body)
    reply.raise_for_status()
    created = reply.json()["succeeded"]
    if len(created) != n:
        raise RuntimeError(f"bulk queued {len(created)} of {n}: {reply.json()['failed'][:1]}")
    jobs = fetch_jobs(stack, [c["id"] for c in created])
    first = min(parse_ts(j["enqueued_at"]) for j in jobs)
    last = max(parse_ts(j["ended_at"]) for j in jobs)
    delivery_cpu = cpu_seconds(stack.delivery.pid) - cpu_before
    time.sleep(0.3)  # let the workers reap their last work-horses
    fifo_ms = (stack.fifo_cpu_seconds() - fifo_before) / n * 1000
    return {
        "rate": n / (last - first),
        "span": last - first,
        "delivery_cpu": delivery_cpu,
        "fifo_ms_per_job": fifo_ms,
    }


def bench_isolation(args: argparse.Namespace) -> dict[str, Any]:
    n = args.throughput_jobs
    log(f"isolation: {n}-job batches, webhook to a hanging receiver vs none, interleaved")
    kinds = ("none", "hang", "healthy")
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    spans: dict[str, list[float]] = {k: [] for k in kinds}
    loads: list[float] = []
    per_job: dict[str, list[float]] = {k: [] for k in kinds}
    with HookReceiver() as rx, CheckedStack(fifo_workers=args.workers) as stack:
        closed = ClosedPorts(args.devices)
        webhooks = {
            "none": None,
            "hang": {"url": rx.hang_url("/hook"), "timeout": 5},
            "healthy": {"url": rx.url("/iso")},  # control: a webhook that is delivered fine
        }
        for kind in kinds:  # warm-up, not counted
            run_batch(stack, 30, closed, webhooks[kind])
        for round_no in range(args.isolation_rounds):
            # Rotate the order so that no kind always follows a hanging run (whose retries
            # and backoff expiry land in the next run).
            order = kinds[round_no % 3 :] + kinds[: round_no % 3]
            for kind in order:
                loads.append(os.getloadavg()[0])
                result = run_batch(stack, n, closed, webhooks[kind])
                rates[kind].append(result["rate"])
                cpu[kind].append(result["delivery_cpu"])
                spans[kind].append(result["span"])
                per_job[kind].append(result["fifo_ms_per_job"])
                log(
                    f"  round {round_no + 1} {kind}: {result['rate']:.1f} jobs/s; delivery "
                    f"service CPU {result['delivery_cpu']:.2f} s in {result['span']:.1f} s; "
                    f"worker CPU {result['fifo_ms_per_job']:.1f} ms/job"
                )
        hang_stats = rx.hang_stats()
    return {
        "n": n,
        "none": median(rates["none"]),
        "hang": median(rates["hang"]),
        "ratio": median(rates["hang"]) / median(rates["none"]),
        "paired": [h / n for h, n in zip(rates["hang"], rates["none"], strict=True)],
        "healthy": median(rates["healthy"]),
        "healthy_ratio": median(rates["healthy"]) / median(rates["none"]),
        "runs": rates,
        "delivery_cpu": cpu,
        "spans": spans,
        "fifo_ms_per_job": {k: median(v) for k, v in per_job.items()},
        "loads": loads,
        "hang_connections": hang_stats["connections"],
    }


# -- 4. fairness ----------------------------------------------------------------------------


def bench_fairness(args: argparse.Namespace) -> dict[str, Any]:
    n, seconds, rate = args.fairness_jobs, args.fairness_seconds, args.fairness_rate
    log(
        f"fairness: burst of {n} jobs then {rate:g} jobs/s for {seconds:g} s; 3 of 4 to a "
        f"hanging receiver, 1 of 4 to a healthy one"
    )
    with HookReceiver() as rx, CheckedStack(fifo_workers=args.workers) as stack:
        closed = ClosedPorts(args.devices)
        warm = stack.submit(failing_job(closed(), {"url": rx.url("/warm")}))
        stack.wait_job(warm["id"])
        rx.wait_count(1, 20, "/warm")
        rx.reset()
        hang = {"url": rx.hang_url("/hook"), "timeout": 5}
        healthy = {"url": rx.url("/fair")}

        def body(i: int) -> dict[str, Any]:
            return failing_job(closed(), healthy if i % 4 == 3 else hang)

        def submit(b: dict[str, Any]) -> tuple[bool, str]:
            return b["webhook"] is healthy, stack.submit(b)["id"]

        # Phase 1: a burst; the hanging deliveries outnumber max_in_flight (256).
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=4) as pool:
            submitted = list(pool.map(submit, [body(i) for i in range(n)]))
        burst_s = time.monotonic() - t0
        # Phase 2: a steady trickle, long enough to span the hanging origin's backoff
        # (webhooks.origin_backoff_seconds, 30 s) and the first retries (5 s).
        i = n
        next_at = time.monotonic()
        phase2_end = next_at + seconds
        while time.monotonic() < phase2_end:
            submitted.append(submit(body(i)))
            i += 1
            next_at += 1 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))
        healthy_ids = [job_id for ok, job_id in submitted if ok]
        jobs = fetch_jobs(stack, healthy_ids)
        records = rx.wait_count(len(healthy_ids), 30, "/fair")
        hang_stats = rx.hang_stats()
    arrivals = {r[0]: r[1] for r in records}
    delays: list[tuple[float, float]] = []  # (job end relative to start, delay)
    missing = 0
    start_ts = min(parse_ts(j["ended_at"]) for j in jobs)
    for job in jobs:
        end = parse_ts(job["ended_at"])
        got = arrivals.get(webhook_id(job["id"]))
        if got is None:
            missing += 1
        else:
            delays.append((end - start_ts, got - end))
    values = [d for _, d in delays]
    buckets: dict[int, float] = {}
    for at, d in delays:
        key = int(at // 5) * 5
        buckets[key] = max(buckets.get(key, 0.0), d)
    return {
        "n": len(submitted),
        "healthy": len(healthy_ids),
        "hanging": len(submitted) - len(healthy_ids),
        "received": len(values),
        "missing": missing,
        "max_s": max(values) if values else float("nan"),
        "median_ms": median(values) * 1000 if values else float("nan"),
        "p99_ms": percentile(values, 99) * 1000 if values else float("nan"),
        "over_1s": sum(d > 1 for d in values) + missing,
        "burst_rate": n / burst_s,
        "timeline": buckets,
        "hang_connections": hang_stats["connections"],
    }


# -- 5-7. webhook endpoints (issue 15) -------------------------------------------------------

#: The Slack-like payload template of tests/integration/test_webhook_endpoints.py.
SLACK_TEMPLATE = """{
  "text": {{ ("NetPulse job " ~ status ~ " on " ~ (device.host or "?")) | tojson }},
  "blocks": [{"type": "section", "text": {"type": "mrkdwn",
    "text": {{ ("*" ~ event_type ~ "* `" ~ (command | join(", ")) ~ "`") | tojson }}}}]
}"""

#: Device hosts of the template section's events: the endpoint filters send each to one
#: endpoint (documentation addresses, never contacted: the events are recorded, not run).
TEMPLATE_HOSTS = {"plain": "198.51.100.1", "template": "198.51.100.2"}

Record = tuple[str | None, float, str]


def endpoint_webhook_id(job_id: str, endpoint_id: str) -> str:
    """The ``webhook-id`` of a job's final event delivered to an endpoint."""
    return f"{webhook_id(job_id)}_{endpoint_id}"


def create_endpoints(stack: Stack, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Create webhook endpoints through the API (``POST /webhooks/endpoints``)."""
    assert stack.api is not None
    made = []
    for spec in specs:
        reply = stack.api.post("/webhooks/endpoints", json=spec)
        if reply.status_code != 201:
            raise RuntimeError(f"endpoint not created: {reply.status_code} {reply.text}")
        made.append(reply.json())
    return made


def successes(stack: Stack) -> int:
    """The delivery service's count of successful attempts (``attempts_success``)."""
    assert stack.redis is not None
    return int(stack.redis.hget(store.STATS, "attempts_success") or 0)


def wait_successes(stack: Stack, target: int, timeout: float) -> bool:
    """Poll the success counter (one HGET every 50 ms; bounded) until it reaches ``target``;
    whether it did. Fetching the receiver's growing record list instead would load the
    receiver and this process while the service works."""
    deadline = time.monotonic() + timeout
    while successes(stack) < target:
        if stack.delivery is None or not stack.delivery.alive():
            raise RuntimeError("the delivery service exited")
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def received(rx: HookReceiver, wanted: set[str], timeout: float = 10) -> list[Record]:
    """The receiver's records once every ``wanted`` webhook-id is among them (bounded), read
    again a second later so that late duplicates (if any) are counted."""
    deadline = time.monotonic() + timeout
    while not wanted <= {r[0] for r in rx.records()} and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    return rx.records()


def delivery_states(stack: Stack, job_ids: list[str]) -> dict[str, str]:
    """webhook-id -> state of every delivery of these jobs, as Redis holds them."""
    assert stack.redis is not None
    pipe = stack.redis.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.smembers(store.job_key(job_id))
    delivery_ids = [m.decode() for members in pipe.execute() for m in members]
    pipe = stack.redis.pipeline(transaction=False)
    for delivery_id in delivery_ids:
        pipe.hmget(store.delivery_key(delivery_id), "webhook_id", "state")
    return {
        wid.decode(): state.decode()
        for wid, state in pipe.execute()
        if wid is not None and state is not None
    }


def redis_pid(stack: Stack) -> int:
    assert stack.redis is not None
    return int(stack.redis.info("server")["process_id"])


def bench_fanout(args: argparse.Namespace) -> dict[str, Any]:
    n, k = args.fanout_events, args.endpoints
    log(
        f"fanout: {n} events recorded into Redis, each to its own webhook and {k} endpoints "
        f"({n * (k + 1)} deliveries)"
    )
    load = os.getloadavg()[0]
    control: dict[str, Any] = {}
    with HookReceiver() as rx, CheckedStack(fifo_workers=1) as stack:
        assert stack.redis is not None and stack.delivery is not None and rx.child is not None
        warm = min(500, n)
        if args.fanout_control:
            # Control: as many deliveries, each event to its own webhook only (no endpoint
            # yet), on the same stack: what the service does per delivery without fan-out.
            target = successes(stack) + warm
            record_events(stack, rx.url("/warm"), warm)
            wait_successes(stack, target, 60)
            total = n * (k + 1)
            target = successes(stack) + total
            cpu0_service = cpu_seconds(stack.delivery.pid)
            _, started = record_events(stack, rx.url("/control"), total)
            control["drained_in_time"] = wait_successes(stack, target, args.fanout_timeout)
            control["rate"] = total / (time.time() - started)
            control["cpu_ms"] = (cpu_seconds(stack.delivery.pid) - cpu0_service) * 1000 / total
            log(
                f"  control: {total} deliveries without endpoints at {control['rate']:.0f}/s, "
                f"{control['cpu_ms']:.3f} ms of delivery service CPU each"
            )
        made = create_endpoints(
            stack, [{"url": rx.url(f"/ep{i}"), "description": f"bench {i}"} for i in range(k)]
        )
        paths = {e["id"]: f"/ep{i}" for i, e in enumerate(made)}
        target = successes(stack) + warm * (k + 1)
        record_events(stack, rx.url("/warm"), warm)
        if not wait_successes(stack, target, 60):
            raise RuntimeError("the warm-up events were not delivered within 60 s")
        rx.reset()
        pids = {
            "delivery service": stack.delivery.pid,
            "redis": redis_pid(stack),
            "receiver": rx.child.pid,
            "benchmark (recording)": os.getpid(),
        }
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        commands_before = stack.redis.info("commandstats")
        target = successes(stack) + n * (k + 1)
        ids, started = record_events(stack, rx.url("/own"), n)
        recorded_s = time.time() - started
        log(f"  recorded {n} events in {recorded_s:.2f} s ({n / recorded_s:.0f}/s); draining")
        drained_in_time = wait_successes(stack, target, args.fanout_timeout)
        busy_s = time.time() - started
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
        commands_after = stack.redis.info("commandstats")
        # webhook-id -> (the path it must arrive at, its job)
        wanted = {webhook_id(i): ("/own", i) for i in ids}
        wanted.update(
            {endpoint_webhook_id(i, ep): (path, i) for i in ids for ep, path in paths.items()}
        )
        records = received(rx, set(wanted))
        got = [r for r in records if r[0] in wanted]
        distinct = {r[0] for r in got}
        missing = set(wanted) - distinct
        missing_jobs = sorted({wanted[w][1] for w in missing})
        states = delivery_states(stack, missing_jobs) if missing_jobs else {}
        service_log = stack.delivery.log_path.read_text(errors="replace")
    still_pending = sum(states.get(w) == store.PENDING for w in missing)
    times = sorted(r[1] for r in got)
    total = len(wanted)
    calls = {
        name: commands_after.get(f"cmdstat_{name}", {}).get("calls", 0)
        - commands_before.get(f"cmdstat_{name}", {}).get("calls", 0)
        for name in ("evalsha", "get", "hgetall")
    }
    per_path: dict[str, int] = {}
    for r in got:
        per_path[r[2]] = per_path.get(r[2], 0) + 1
    return {
        "n": n,
        "k": k,
        "total": total,
        "received": len(got),
        "distinct": len(distinct),
        "missing": len(missing),
        "still_pending": still_pending,
        "lost": len(missing) - still_pending,
        "duplicates": len(got) - len(distinct),
        "misrouted": sum(wanted[r[0]][0] != r[2] for r in got if r[0] is not None),
        "unexpected": len(records) - len(got),
        "per_path": (min(per_path.values()), max(per_path.values())) if per_path else (0, 0),
        "drained_in_time": drained_in_time,
        "record_rate": n / recorded_s,
        "rate_end_to_end": len(distinct) / (times[-1] - started) if times else float("nan"),
        "rate_drain": len(got) / (times[-1] - times[0]) if len(times) > 1 else float("nan"),
        "seconds": times[-1] - started if times else float("nan"),
        "rate_counter": total / busy_s,
        "cpu_ms_per_delivery": {name: s * 1000 / max(len(got), 1) for name, s in cpu.items()},
        "cores": {name: s / busy_s for name, s in cpu.items()},
        "redis_calls": calls,
        "unexpected_errors": service_log.count("unexpected error; it returns after its lease"),
        "load": load,
        "control": control,
    }


def render_cost(number: int = 2000, repeat: int = 7) -> dict[str, Any]:
    """CPU time of ``render_body(SLACK_TEMPLATE, event)`` in this process (timeit with
    ``time.process_time``), for an event like the section's (what the service parses from
    the stored body)."""
    import json
    import timeit

    from netpulse.webhooks import events
    from netpulse.webhooks.payload import render_body

    now = datetime.now(UTC)
    event = json.loads(
        events.encode(
            events.build_event(
                job_id=str(uuid.uuid4()),
                status="finished",
                meta={**BENCH_META, "host": TEMPLATE_HOSTS["template"]},
                started_at=now,
                ended_at=now,
                retval=[{"command": "true", "stdout": "", "exit_status": 0}],
                error=None,
            )
        )
    )
    body = render_body(SLACK_TEMPLATE, event)
    message = json.loads(body)
    expected = f"NetPulse job finished on {TEMPLATE_HOSTS['template']}"
    if message["text"] != expected:
        raise RuntimeError(f"the template rendered {message['text']!r}, not {expected!r}")
    runs = timeit.repeat(
        lambda: render_body(SLACK_TEMPLATE, event),
        timer=time.process_time,
        number=number,
        repeat=repeat,
    )
    per_call = [t / number * 1e6 for t in runs]
    return {
        "min_us": min(per_call),
        "median_us": median(per_call),
        "number": number,
        "repeat": repeat,
        "body_bytes": len(body),
        "default_bytes": len(events.encode(event)),
    }


def bench_template(args: argparse.Namespace) -> dict[str, Any]:
    n, rounds = args.template_deliveries, args.template_rounds
    log(
        f"template: delivery service CPU per delivery, {rounds} rounds of {n} deliveries to "
        f"an endpoint with the Slack-like template and {n} to one without (ABBA)"
    )
    load = os.getloadavg()[0]
    runs: list[dict[str, Any]] = []
    with HookReceiver() as rx, CheckedStack(fifo_workers=1) as stack:
        made = create_endpoints(
            stack,
            [
                {"url": rx.url("/plain"), "hosts": [TEMPLATE_HOSTS["plain"]]},
                {
                    "url": rx.url("/template"),
                    "hosts": [TEMPLATE_HOSTS["template"]],
                    "template": SLACK_TEMPLATE,
                },
            ],
        )
        endpoint_ids = {"plain": made[0]["id"], "template": made[1]["id"]}
        req = bench_request(None)  # no webhook of its own: one delivery per event

        def run(kind: str, count: int) -> dict[str, Any]:
            assert stack.delivery is not None
            rx.reset()
            loadavg = os.getloadavg()[0]
            target = successes(stack) + count
            cpu0 = cpu_seconds(stack.delivery.pid)
            meta = {**BENCH_META, "host": TEMPLATE_HOSTS[kind]}
            ids, started = record_events(stack, "", count, req=req, meta=meta)
            if not wait_successes(stack, target, args.template_timeout):
                raise RuntimeError(f"{kind}: {count} deliveries not done in time (or failed)")
            cpu = cpu_seconds(stack.delivery.pid) - cpu0
            wanted = {endpoint_webhook_id(i, endpoint_ids[kind]) for i in ids}
            got = [r for r in received(rx, wanted) if r[0] in wanted]
            distinct = {r[0] for r in got}
            times = sorted(r[1] for r in got)
            return {
                "kind": kind,
                "cpu_ms": cpu * 1000 / count,
                "rate": len(distinct) / (times[-1] - started),
                "exact": distinct == wanted and len(got) == count,
                "paths": {r[2] for r in got},
                "load": loadavg,
            }

        for kind in ("plain", "template"):  # warm-up, not counted
            run(kind, min(500, n))
        for round_no in range(rounds):
            order = ("plain", "template") if round_no % 2 == 0 else ("template", "plain")
            for kind in order:
                result = run(kind, n)
                result["round"] = round_no
                runs.append(result)
                log(
                    f"  round {round_no + 1} {kind}: {result['cpu_ms']:.3f} ms CPU per "
                    f"delivery, {result['rate']:.0f} deliveries/s"
                )
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["kind"]] = r
    diffs = [x["template"]["cpu_ms"] - x["plain"]["cpu_ms"] for x in by_round.values()]
    cpu = {k: [r["cpu_ms"] for r in runs if r["kind"] == k] for k in ("plain", "template")}
    rate = {k: [r["rate"] for r in runs if r["kind"] == k] for k in ("plain", "template")}
    return {
        "n": n,
        "rounds": rounds,
        "diff_ms": median(diffs),
        "diffs": diffs,
        "cpu": cpu,
        "rate": rate,
        "exact": all(r["exact"] for r in runs),
        "paths_ok": all(r["paths"] == {f"/{r['kind']}"} for r in runs),
        "loads": [r["load"] for r in runs],
        "in_process": render_cost(),
        "load": load,
    }


def fanout_latencies(
    jobs: list[dict[str, Any]], records: list[Record], endpoint_ids: list[str]
) -> dict[str, Any]:
    """Job end -> arrival (ms) of each job's own webhook and of its endpoint deliveries."""
    arrivals = {r[0]: r[1] for r in records}
    own: list[float] = []
    endpoint: list[float] = []
    last: list[float] = []  # per job: the last of its deliveries
    missing = 0
    for job in jobs:
        end = parse_ts(job["ended_at"])
        own_id = webhook_id(job["id"])
        if own_id in arrivals:
            own.append((arrivals[own_id] - end) * 1000)
        ep_ids = [endpoint_webhook_id(job["id"], e) for e in endpoint_ids]
        got = [(arrivals[w] - end) * 1000 for w in ep_ids if w in arrivals]
        endpoint.extend(got)
        missing += len(ep_ids) + 1 - len(got) - (own_id in arrivals)
        if own_id in arrivals and len(got) == len(ep_ids):
            last.append(max([own[-1], *got]))
    nan = float("nan")
    first = min(parse_ts(j["enqueued_at"]) for j in jobs)
    return {
        "own_median": median(own) if own else nan,
        "own_p99": percentile(own, 99),
        "endpoint_median": median(endpoint) if endpoint else nan,
        "endpoint_p99": percentile(endpoint, 99),
        "endpoint_max": max(endpoint) if endpoint else nan,
        "endpoint_count": len(endpoint),
        "last_median": median(last) if last else nan,
        "last_p99": percentile(last, 99),
        "missing": missing,
        "duplicates": len(records) - len({r[0] for r in records}),
        "jobs_per_s": len(jobs) / (max(parse_ts(j["ended_at"]) for j in jobs) - first),
        "statuses": sorted({j["status"] for j in jobs}),
    }


def bench_endpoint_latency(args: argparse.Namespace) -> dict[str, Any]:
    n, k, rate = args.endpoint_latency_jobs, args.endpoints, args.endpoint_latency_rate
    log(
        f"endpoint_latency: {n} fast-failing jobs with a webhook of their own, then {n} more "
        f"with {k} endpoints subscribed to every event"
        + (f", then {n} more submitted at {rate:g} jobs/s" if rate else "")
    )
    load = os.getloadavg()[0]
    runs: dict[str, dict[str, Any]] = {}
    with HookReceiver() as rx, CheckedStack(fifo_workers=args.workers) as stack:
        closed = ClosedPorts(args.devices)

        def run(name: str, path: str, endpoint_ids: list[str], pace: float = 0) -> None:
            assert stack.delivery is not None
            loadavg = os.getloadavg()[0]
            cpu0, fifo0 = cpu_seconds(stack.delivery.pid), stack.fifo_cpu_seconds()
            started = time.monotonic()
            jobs, records, submit_rate = latency_jobs(
                stack, rx, closed, n, path, 1 + len(endpoint_ids), pace
            )
            wall = time.monotonic() - started
            time.sleep(0.3)  # let the workers reap their last work-horses
            result = fanout_latencies(jobs, records, endpoint_ids)
            result.update(
                submit_rate=submit_rate,
                delivery_cores=(cpu_seconds(stack.delivery.pid) - cpu0) / wall,
                fifo_cores=(stack.fifo_cpu_seconds() - fifo0) / wall,
                load=loadavg,
            )
            runs[name] = result
            log(
                f"  {name}: own webhook median {result['own_median']:.1f} ms, endpoint "
                f"deliveries median {result['endpoint_median']:.1f} ms; "
                f"{result['jobs_per_s']:.0f} jobs/s"
            )

        warm_up_job(stack, rx, closed)
        run("control", "/base", [])
        made = create_endpoints(
            stack, [{"url": rx.url(f"/ep{i}"), "description": f"bench {i}"} for i in range(k)]
        )
        warm_up_job(stack, rx, closed, 1 + k)
        endpoint_ids = [e["id"] for e in made]
        run("endpoints", "/own", endpoint_ids)
        if rate:
            rx.reset()
            run("paced", "/paced", endpoint_ids, rate)
    return {"n": n, "k": k, "rate": rate, "runs": runs, "load": load}


# -- main -----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument(
        "--latency-rate",
        type=float,
        default=20,
        help="jobs/s of latency's paced run, after the back-to-back one (0: no paced run)",
    )
    parser.add_argument("--sustained-events", type=int, default=10000)
    parser.add_argument(
        "--sustained-timeout", type=float, default=45, help="bound on the drain wait (s)"
    )
    parser.add_argument("--throughput-jobs", type=int, default=200)
    parser.add_argument("--isolation-rounds", type=int, default=5)
    parser.add_argument("--fairness-jobs", type=int, default=800, help="burst size")
    parser.add_argument("--fairness-seconds", type=float, default=40)
    parser.add_argument("--fairness-rate", type=float, default=10, help="jobs/s after the burst")
    parser.add_argument("--workers", type=int, default=8, help="FIFO worker processes")
    parser.add_argument(
        "--devices", type=int, default=64, help="closed ports the fast-failing jobs go to"
    )
    parser.add_argument(
        "--endpoints", type=int, default=10, help="endpoints subscribed to every event"
    )
    parser.add_argument("--fanout-events", type=int, default=2000)
    parser.add_argument(
        "--fanout-control",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="first as many deliveries without endpoints (events to their own webhook only)",
    )
    parser.add_argument(
        "--fanout-timeout", type=float, default=60, help="bound on the drain wait (s)"
    )
    parser.add_argument(
        "--template-deliveries", type=int, default=3000, help="deliveries per template run"
    )
    parser.add_argument("--template-rounds", type=int, default=8, help="rounds of A and B")
    parser.add_argument(
        "--template-timeout", type=float, default=30, help="bound on each run's drain (s)"
    )
    parser.add_argument("--endpoint-latency-jobs", type=int, default=200)
    parser.add_argument(
        "--endpoint-latency-rate",
        type=float,
        default=20,
        help="jobs/s of endpoint_latency's paced run (0: no paced run)",
    )
    parser.add_argument("--only", nargs="*", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    versions = check_local_dependencies()
    log(f"machine: {machine()}")
    log("delivery service dependencies here: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    quiet = wait_for_quiet()
    common.LOAD_AT_START = quiet["start"]  # section_header's "at start": after the wait
    t0 = time.monotonic()
    rows: list[list[Any]] = []
    notes: list[str] = []

    if "latency" in args.only:
        r = bench_latency(args)
        for name, x in r["runs"].items():
            paced = name == "paced"
            how = (
                f"paced at {r['rate']:g} jobs/s (the target's run)"
                if paced
                else "submitted back to back (stress run: saturates the 2 cores; not the "
                "target's run)"
            )
            rows.append(
                [
                    f"Job end -> webhook received, {x['n']} fast jobs {how}, "
                    f"{args.workers} FIFO workers",
                    f"median **{x['median_ms']:.1f} ms**, p99 **{x['p99_ms']:.1f} ms** "
                    f"(min {x['min_ms']:.1f}, max {x['max_ms']:.1f}); "
                    f"{x['received']}/{x['n']} received",
                    "median <= 5 ms, p99 <= 20 ms",
                    verdict(x["median_ms"] <= 5 and x["p99_ms"] <= 20 and not x["missing"])
                    + ("" if paced else " (stress)"),
                ]
            )
        details = "; ".join(
            f"{name}: submitted at {x['submit_rate']:.0f} jobs/s, jobs ran at "
            f"{x['jobs_per_s']:.0f}/s (first enqueued to last ended), queue time median "
            f"{x['queue_median_ms']:.1f} ms; job end -> event recorded median "
            f"{x['to_record_median']:.1f} ms (p99 {x['to_record_p99']:.1f}), recorded -> "
            f"received median {x['to_arrival_median']:.1f} ms (p99 {x['to_arrival_p99']:.1f}); "
            f"cores busy (whole machine) {x['busy_cores']:.2f} of {os.cpu_count()}, of which the "
            f"FIFO workers and their work-horses {x['fifo_cores']:.2f}, the delivery service "
            f"{x['delivery_cores']:.2f}; 1-min load before {x['load']:.1f}"
            for name, x in r["runs"].items()
        )
        notes.append(
            f"- latency: one stack, {args.workers} FIFO workers, paramiko jobs to "
            f"{args.devices} closed ports (they fail at once: `job.failed` events, statuses "
            f"{sorted({s for x in r['runs'].values() for s in x['statuses']})}); latency = "
            f"receiver arrival - the job's `ended_at`, split at the delivery record's "
            f"`created_at` (when the work-horse's failure callback recorded the event). Runs: "
            f"{details}."
        )
        if "paced" in r["runs"]:
            notes.append(
                f"- latency, which run the target is judged on: the paced one "
                f"({r['rate']:g} jobs/s). Submitted back to back, one client sends jobs far "
                f"faster than {args.workers} FIFO workers can run them (each job forks an RQ "
                f"work-horse), so the FIFO pool keeps both cores busy for the whole run (cores "
                f"busy above) and every delivery waits for a CPU behind the work-horses: that "
                f"figure measures the run queue of an overloaded 2-core host, not the delivery "
                f"path. At {r['rate']:g} jobs/s the host has CPU to spare, which is the "
                f"condition a latency target describes; the back-to-back figure is kept as the "
                f"stress figure."
            )
    if "sustained" in args.only:
        r = bench_sustained(args)
        rows.append(
            [
                f"Sustained delivery, {r['n']} events recorded with record_final_event",
                f"**{r['rate_end_to_end']:.0f} events/s** end to end ({r['seconds']:.1f} s; "
                f"drain {r['rate_drain']:.0f}/s); distinct received {r['distinct']}/{r['n']} "
                f"within {args.sustained_timeout:g} s ({r['still_pending']} still pending, "
                f"lost {r['lost']}), duplicates {r['duplicates']}",
                ">= 1,500 events/s, none lost",
                verdict(r["rate_end_to_end"] >= 1500 and r["lost"] == 0 and not r["undelivered"]),
            ]
        )
        rows.append(
            [
                f"Delivery-service CPU per delivered event in that run (CPU: {cpu_model()}, "
                f"{os.cpu_count()} cores)",
                f"**{r['service_cpu_ms_per_event']:.3f} ms** per event (user + system, /proc; "
                f"{r['cores']['delivery service']:.2f} of a core over {r['window']:.1f} s)",
                "<= 0.5 ms",
                verdict(r["service_cpu_ms_per_event"] <= 0.5),
            ]
        )
        notes.append(
            f"- sustained: events recorded in pipelines of 500 at {r['record_rate']:.0f}/s while "
            f"the delivery service ran; rate = distinct received / (last arrival - first "
            f"record); the drain wait is bounded at {args.sustained_timeout:g} s (`lost` = "
            f"neither received nor pending in Redis). Service stats: attempts "
            f"{r['attempts']}, successes {r['attempts_success']}. Redis calls during the run "
            f"(recording included: 1 EVALSHA and 3 ZADD per event; ZADD also counts the "
            f"lease and due-index updates inside the claim and finish scripts): HGETALL "
            f"{r['redis_calls']['hgetall']}, ZADD {r['redis_calls']['zadd']}, EVALSHA "
            f"{r['redis_calls']['evalsha']}; HGETALL per delivered event "
            f"{r['redis_calls']['hgetall'] / max(r['distinct'], 1):.1f}. CPU per delivered "
            f"event from the first record to the success counter reaching the count "
            f"({r['window']:.2f} s): "
            + ", ".join(f"{k} {v:.3f} ms" for k, v in r["cpu_ms_per_event"].items())
            + "; cores used: "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["cores"].items())
            + f"; whole machine {r['busy_cores']:.2f} of {os.cpu_count()} busy. Receiver: "
            f"bench/receiver.py (raw asyncio + uvloop + httptools HTTP/1.1 server, separate "
            f"process, answers 200 immediately)."
        )
        if r["service_exit_code"] is not None or r["max_connections_errors"]:
            notes.append(
                f"- sustained: **the delivery service failed**: process exit code "
                f"{r['service_exit_code']}, {r['max_connections_errors']} `MaxConnectionsError: "
                f"Too many connections` in its log, {r['unexpected_errors']} deliveries "
                f"'returns after its lease', {r['pending_left']} deliveries still pending."
            )
    if "isolation" in args.only:
        r = bench_isolation(args)
        rows.append(
            [
                f"Device job throughput, webhook to a never-answering receiver (timeout 5 s) "
                f"vs none, {r['n']} jobs x {args.isolation_rounds} runs each (median)",
                f"none {r['none']:.1f} jobs/s, hanging webhook {r['hang']:.1f} jobs/s: ratio "
                f"**{r['ratio']:.3f}**",
                ">= 0.95",
                verdict(r["ratio"] >= 0.95),
            ]
        )
        notes.append(
            f"- isolation: runs (jobs/s) none {[round(x, 1) for x in r['runs']['none']]}, hang "
            f"{[round(x, 1) for x in r['runs']['hang']]} (per-round hang/none ratios "
            f"{[round(x, 2) for x in r['paired']]}, median {median(r['paired']):.3f}); "
            f"control with a webhook to the healthy "
            f"receiver: {[round(x, 1) for x in r['runs']['healthy']]} jobs/s (ratio "
            f"{r['healthy_ratio']:.3f} to none); the hanging receiver saw "
            f"{r['hang_connections']} TCP connections (so the webhooks were really attempted). "
            f"CPU used by the delivery service during each run: none "
            f"{[round(x, 2) for x in r['delivery_cpu']['none']]} s, hang "
            f"{[round(x, 2) for x in r['delivery_cpu']['hang']]} s, healthy "
            f"{[round(x, 2) for x in r['delivery_cpu']['healthy']]} s (run lengths none "
            f"{[round(x, 1) for x in r['spans']['none']]} s, hang "
            f"{[round(x, 1) for x in r['spans']['hang']]} s; {os.cpu_count()} cores). "
            f"CPU per job in the FIFO workers + work-horses (median): none "
            f"{r['fifo_ms_per_job']['none']:.1f} ms, hang {r['fifo_ms_per_job']['hang']:.1f} ms, "
            f"healthy {r['fifo_ms_per_job']['healthy']:.1f} ms. 1-min load average before each "
            f"run: {[round(x, 1) for x in r['loads']]}."
        )
    if "fairness" in args.only:
        r = bench_fairness(args)
        rows.append(
            [
                f"Fairness: {r['n']} jobs interleaved ({args.fairness_jobs} burst + "
                f"{args.fairness_rate:g}/s for {args.fairness_seconds:g} s), {r['hanging']} to a "
                f"hanging receiver, {r['healthy']} to a healthy one",
                f"healthy max delay **{r['max_s'] * 1000:.0f} ms** (median {r['median_ms']:.1f} "
                f"ms, p99 {r['p99_ms']:.0f} ms); {r['over_1s']} over 1 s",
                "every healthy event within 1 s",
                verdict(r["over_1s"] == 0),
            ]
        )
        timeline = ", ".join(f"{k}-{k + 5} s: {v * 1000:.0f} ms" for k, v in r["timeline"].items())
        notes.append(
            f"- fairness: burst submitted by 4 client threads at {r['burst_rate']:.0f} jobs/s; "
            f"received {r['received']}/{r['healthy']} healthy events; the hanging receiver saw "
            f"{r['hang_connections']} TCP connections. Max healthy delay per 5 s of job end "
            f"time: {timeline}."
        )

    if "fanout" in args.only:
        r = bench_fanout(args)
        rows.append(
            [
                f"Fan-out: {r['n']} events recorded with record_final_event, each to its own "
                f"webhook + {r['k']} endpoints subscribed to every event = {r['total']} "
                f"deliveries",
                f"**{r['rate_end_to_end']:.0f} deliveries/s** end to end ({r['seconds']:.1f} s; "
                f"drain {r['rate_drain']:.0f}/s); distinct received {r['distinct']}/"
                f"{r['total']} ({r['still_pending']} still pending, lost {r['lost']}), "
                f"duplicates {r['duplicates']}, at the wrong path {r['misrouted']}",
                ">= 1,500 deliveries/s, none lost or duplicated",
                verdict(
                    r["rate_end_to_end"] >= 1500
                    and r["missing"] == 0
                    and r["duplicates"] == 0
                    and r["misrouted"] == 0
                ),
            ]
        )
        ms = r["cpu_ms_per_delivery"]
        notes.append(
            f"- fanout: {r['k']} endpoints made with `POST /webhooks/endpoints` (no filter: the "
            f"default subscription, every job and detached-task event but `job.started`), each "
            f"to its own path of the healthy receiver (one origin, so the service's "
            f"per-origin limit applies to all: `max_in_flight_per_origin` 8); the events also "
            f"have a webhook of their own, so {r['k'] + 1} deliveries each, each with its own "
            f"webhook-id. Recorded in pipelines of 500 events ({(r['k'] + 1) * 500} record "
            f"script calls, plus one GET of `endpoints:version` per event outside the pipeline) "
            f"at {r['record_rate']:.0f} events/s = {r['record_rate'] * (r['k'] + 1):.0f} "
            f"deliveries/s while the service ran; rate = distinct received / (last arrival - "
            f"first record); done when the service's `attempts_success` counter said so (one "
            f"HGET every 50 ms; drained within {args.fanout_timeout:g} s: "
            f"{r['drained_in_time']}), then the receiver's records checked against every "
            f"expected webhook-id and its endpoint's path (deliveries per path: "
            f"{r['per_path'][0]}-{r['per_path'][1]}; other records {r['unexpected']}). "
            f"CPU per delivery over the run: delivery service {ms['delivery service']:.3f} ms, "
            f"redis {ms['redis']:.3f} ms, receiver {ms['receiver']:.3f} ms, this process "
            f"(recording) {ms['benchmark (recording)']:.3f} ms; cores busy: "
            + ", ".join(f"{name} {c:.2f}" for name, c in r["cores"].items())
            + f". Redis calls during the run: EVALSHA {r['redis_calls']['evalsha']}, GET "
            f"{r['redis_calls']['get']}, HGETALL {r['redis_calls']['hgetall']}. 'Unexpected "
            f"error' lines in the service log: {r['unexpected_errors']}. 1-min load before "
            f"the section: {r['load']:.2f}."
        )
        if r["control"]:
            c = r["control"]
            notes.append(
                f"- fanout control, same stack just before the endpoints were made: "
                f"{r['total']} events each to its own webhook only ({r['total']} deliveries, no "
                f"endpoint): {c['rate']:.0f} deliveries/s (first record to the success counter "
                f"reaching the count), delivery service CPU {c['cpu_ms']:.3f} ms per delivery "
                f"(fan-out run, measured the same way: {r['rate_counter']:.0f} deliveries/s, "
                f"{ms['delivery service']:.3f} ms); drained within "
                f"{args.fanout_timeout:g} s: {c['drained_in_time']}."
            )
    if "template" in args.only:
        r = bench_template(args)
        ip = r["in_process"]
        rows.append(
            [
                f"Payload template: delivery service CPU per delivery, Slack-like template vs "
                f"the default body, {r['rounds']} rounds of {r['n']} deliveries each (A/B, "
                f"order alternated)",
                f"median difference **{r['diff_ms']:+.3f} ms** per delivery (per round "
                f"{min(r['diffs']):+.3f} to {max(r['diffs']):+.3f}); default "
                f"{median(r['cpu']['plain']):.3f} ms, template {median(r['cpu']['template']):.3f}"
                f" ms (medians)",
                "<= 0.3 ms more",
                verdict(r["diff_ms"] <= 0.3 and r["exact"] and r["paths_ok"]),
            ]
        )
        rows.append(
            [
                "Cross-check in-process: `render_body(SLACK_TEMPLATE, event)`, timeit with "
                "`time.process_time`",
                f"**{ip['min_us'] / 1000:.3f} ms** per call (best of {ip['repeat']} x "
                f"{ip['number']}; median {ip['median_us'] / 1000:.3f} ms)",
                "<= 0.3 ms more",
                verdict(ip["min_us"] <= 300),
            ]
        )
        notes.append(
            f"- template: one stack, two endpoints to the healthy receiver, identical but for "
            f"`template` (tests/integration/test_webhook_endpoints.py's SLACK_TEMPLATE) and a "
            f"`hosts` filter each ({TEMPLATE_HOSTS['plain']} / {TEMPLATE_HOSTS['template']}), "
            f"and events recorded with record_final_event for a request without a webhook of "
            f"its own, so each event is one delivery to one of them. Each run: {r['n']} events "
            f"for one endpoint, its CPU = the delivery service's CPU (/proc, user + system) from "
            f"before the recording to the success counter reaching the run's count, / "
            f"deliveries; runs alternate A B / B A per round, difference taken within each "
            f"round; {min(500, r['n'])} of each first as a warm-up. Per-round differences (ms): "
            f"{[round(d, 3) for d in r['diffs']]}. CPU per delivery (ms) default "
            f"{[round(x, 3) for x in r['cpu']['plain']]}, template "
            f"{[round(x, 3) for x in r['cpu']['template']]}. End-to-end rate (deliveries/s, "
            f"median) default {median(r['rate']['plain']):.0f}, template "
            f"{median(r['rate']['template']):.0f}. Every delivery received once at its "
            f"endpoint's path: {r['exact'] and r['paths_ok']} (a template failing at send "
            f"time would be a failed attempt, not a success). Rendered body {ip['body_bytes']} "
            f"B vs default body {ip['default_bytes']} B. 1-min load before each run: "
            f"{[round(x, 1) for x in r['loads']]}."
        )
    if "endpoint_latency" in args.only:
        r = bench_endpoint_latency(args)
        ctl, ep = r["runs"]["control"], r["runs"]["endpoints"]
        rows.append(
            [
                f"Job end -> webhook received with {r['k']} endpoints subscribed to every "
                f"event, {r['n']} fast jobs submitted back to back ({args.workers} FIFO workers)",
                f"endpoint deliveries median **{ep['endpoint_median']:.1f} ms**, p99 "
                f"**{ep['endpoint_p99']:.1f} ms** (max {ep['endpoint_max']:.1f}; "
                f"{ep['endpoint_count']} deliveries); the job's own webhook median "
                f"{ep['own_median']:.1f} ms, p99 {ep['own_p99']:.1f} ms; missing "
                f"{ep['missing']}; control without endpoints: median {ctl['own_median']:.1f} ms",
                "median < 20 ms",
                verdict(ep["endpoint_median"] < 20 and ep["own_median"] < 20 and not ep["missing"]),
            ]
        )
        paced = r["runs"].get("paced")
        if paced is not None:
            rows.append(
                [
                    f"Same, {r['n']} jobs paced at {r['rate']:g} jobs/s (diagnostic: below "
                    f"saturation)",
                    f"endpoint deliveries median **{paced['endpoint_median']:.1f} ms**, p99 "
                    f"**{paced['endpoint_p99']:.1f} ms**; own webhook median "
                    f"{paced['own_median']:.1f} ms, p99 {paced['own_p99']:.1f} ms; missing "
                    f"{paced['missing']}",
                    "median < 20 ms",
                    verdict(
                        paced["endpoint_median"] < 20
                        and paced["own_median"] < 20
                        and not paced["missing"]
                    ),
                ]
            )

        def detail(name: str, x: dict[str, Any]) -> str:
            return (
                f"{name}: submitted at {x['submit_rate']:.0f}/s, jobs ended at "
                f"{x['jobs_per_s']:.0f}/s (first enqueued to last ended); the last of each "
                f"job's deliveries median {x['last_median']:.1f} ms, p99 {x['last_p99']:.1f} ms; "
                f"cores used by the delivery service {x['delivery_cores']:.2f}, by the FIFO "
                f"workers and their work-horses {x['fifo_cores']:.2f}; duplicates "
                f"{x['duplicates']}; 1-min load before {x['load']:.1f}"
            )

        notes.append(
            f"- endpoint_latency: as `latency` (paramiko jobs to {args.devices} closed ports, "
            f"`job.failed` events, statuses {ep['statuses']}), each job with a webhook of its "
            f"own; {r['k']} endpoints (no filter) to their own paths of the same receiver, so "
            f"{r['k'] + 1} deliveries per job, all to one origin; latency = receiver arrival - "
            f"the job's `ended_at`. One stack, runs in this order: control ({r['n']} jobs, "
            f"own webhook only, median {ctl['own_median']:.1f} ms, p99 {ctl['own_p99']:.1f} "
            f"ms), then the endpoints were made, then the runs with them. "
            + "; ".join(detail(name, x) for name, x in r["runs"].items())
            + "."
        )

    paths = sorted({path for found in SERVICE_CHECKS for path in found.values()})
    dumps = [d for d in SERVICE_DUMPS if d.get("ran")]
    skipped = [d["why"] for d in SERVICE_DUMPS if not d.get("ran")]
    frames = sorted({f for d in dumps for f in d["uvloop_frames"]})
    notes.append(
        "- Delivery service dependencies, checked (the run stops with an error if one is "
        "missing): in this process (same interpreter and venv as the service) "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if "parser" not in k)
        + f" import; redis-py's default parsers (async / sync) are {versions['redis parser']}, "
        f"aiohttp's response parser is {versions['aiohttp parser']} (C). In every delivery "
        f"service this run started ({len(SERVICE_CHECKS)}), /proc/<pid>/maps holds "
        + ", ".join(f"`{x}`" for x in paths)
        + ", read as soon as the service logged its start, and AIOHTTP_NO_EXTENSIONS is not "
        "set in its environment. Why /proc/<pid>/maps rather than py-spy as the check: it is "
        "deterministic and costs nothing (a py-spy dump is a snapshot: an idle asyncio loop "
        "shows no coroutine frame, so _HiredisParser or aiohttp frames appear only if a "
        "dump happens to land mid-request; py-spy also pauses the process it reads). A mapped "
        "library is one the process imported; that it is the one in use follows from the "
        "code: `uvloop.run` refuses to run on any other loop (run_event_loop calls it), "
        "redis-py picks the parser above for every connection (NetPulse sets no "
        "parser_class), and GuardedSender is aiohttp. Cross-check after the measurements, "
        f"`py-spy dump` of the service: {len(dumps)} dump(s), uvloop frames in the main "
        "thread: "
        + ("; ".join(f"`{f}`" for f in frames) or "none")
        + (f" (skipped: {skipped})" if skipped else "")
        + "."
    )
    elapsed = time.monotonic() - t0
    text = table(["Benchmark", "Measured", "Target", "Verdict"], rows)
    notes.append(
        f"- Before the run: load {quiet['first']}; waited {quiet['waited']:.0f} s for the "
        f"1-minute load to reach {LOAD_LIMIT} or less. Product: commit {git_head()} of "
        "/work/main (other engineers' uncommitted edits may be present)."
    )
    details = "\n".join(notes) + "\n"
    print()
    print(text)
    print(details)
    if not args.no_write:
        name = "webhooks"
        title = "Webhooks: latency, throughput, isolation, fairness, endpoints (bench/webhooks.py)"
        if set(args.only) <= set(ENDPOINT_SECTIONS):
            name = "webhook-endpoints"
            if set(args.only) != set(ENDPOINT_SECTIONS):
                name = f"webhook-endpoints ({', '.join(args.only)})"
            title = f"Webhook endpoints (issue 15) (bench/webhooks.py --only {' '.join(args.only)})"
        elif set(args.only) != set(SECTIONS):  # a partial run gets its own section
            name = f"webhooks ({', '.join(args.only)})"
            title = f"Webhooks, partial run: {', '.join(args.only)} (bench/webhooks.py)"
        write_section(name, title, elapsed, text, details)
    log(f"done in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
