"""Core benchmarks (issue 2): queueing overhead and parallelism, against FakeNOS cisco_ios.

    cd /work/main && .venv/bin/python bench/core.py [--workers 20] [--devices 20]
        [--overhead-runs 20] [--parallel-runs 3] [--no-write]

1. Queueing overhead: ``show version`` with enable mode on one device.
   NetPulse: ``POST /device/exec`` + ``GET /jobs/{id}?wait=30`` (one keep-alive HTTP client),
   vs. direct: netmiko ``ConnectHandler`` + ``enable()`` + ``send_command`` + ``disconnect()``
   in this process. The two are interleaved (A, B, A, B, ...) after one unmeasured warm-up
   each; median of ``--overhead-runs`` each. Target: ratio <= 1.2.
2. Parallelism: 40 jobs (2 per device over 20 devices), all submitted then all waited,
   vs. the same 40 one after another with netmiko directly; median of ``--parallel-runs``
   each, interleaved. Target: speed-up >= 6x.

The FakeNOS devices run in their own process (bench/fleet_proc.py) so they do not share this
process's GIL with the direct netmiko client. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Fleet,
    Stack,
    conn_args,
    log,
    median,
    table,
    write_section,
)

COMMAND = "show version"


def job_body(dev: dict[str, Any]) -> dict[str, Any]:
    return {
        "driver": "netmiko",
        "connection_args": conn_args(dev),
        "command": COMMAND,
        "enable_mode": True,
        # The FIFO worker pool is what is measured (netmiko's default is now "pinned").
        "queue_strategy": "fifo",
    }


def direct_once(dev: dict[str, Any]) -> str:
    """What a NetPulse job does, done here: connect, enable, command, disconnect.

    Same timeouts as netpulse.plugins.drivers.netmiko (conn_timeout/auth_timeout 10)."""
    from netmiko import ConnectHandler

    conn = ConnectHandler(**conn_args(dev), conn_timeout=10, auth_timeout=10)
    try:
        conn.enable()
        output = conn.send_command(COMMAND)
    finally:
        conn.disconnect()
    if "Cisco IOS" not in output:
        raise RuntimeError(f"unexpected output: {output[:200]!r}")
    return output


def netpulse_once(stack: Stack, dev: dict[str, Any]) -> dict[str, Any]:
    assert stack.api is not None
    created = stack.submit(job_body(dev))
    reply = stack.api.get(f"/jobs/{created['id']}", params={"wait": 30})
    reply.raise_for_status()
    job = reply.json()
    if job["status"] != "finished":
        raise RuntimeError(f"job {job['id']} ended {job['status']}: {job.get('result')}")
    return job


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - started, value


def bench_overhead(stack: Stack, dev: dict[str, Any], runs: int) -> dict[str, Any]:
    log(f"overhead: warm-up, then {runs} interleaved pairs on {dev['name']}")
    direct_once(dev)
    netpulse_once(stack, dev)
    direct: list[float] = []
    queued: list[float] = []
    inside: list[float] = []  # started_at -> ended_at as the worker saw it
    queue_time: list[float] = []
    for i in range(runs):
        direct.append(timed(direct_once, dev)[0])
        elapsed, job = timed(netpulse_once, stack, dev)
        queued.append(elapsed)
        inside.append(job["duration"])
        queue_time.append(job["queue_time"])
        if i % 5 == 4:
            log(f"  {i + 1}/{runs}: direct {median(direct):.3f} s, netpulse {median(queued):.3f} s")
    return {
        "direct": median(direct),
        "netpulse": median(queued),
        "ratio": median(queued) / median(direct),
        "direct_min": min(direct),
        "direct_max": max(direct),
        "netpulse_min": min(queued),
        "netpulse_max": max(queued),
        "job_duration": median(inside),
        "queue_time": median(queue_time),
    }


def parallel_netpulse(stack: Stack, devices: list[dict[str, Any]]) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    created = [stack.submit(job_body(dev)) for dev in devices]
    with ThreadPoolExecutor(max_workers=8) as pool:
        jobs = list(pool.map(lambda c: stack.wait_job(c["id"], timeout=120), created))
    elapsed = time.perf_counter() - started
    bad = [j for j in jobs if j["status"] != "finished"]
    if bad:
        raise RuntimeError(f"{len(bad)} parallel job(s) did not finish: {bad[0].get('result')}")
    return elapsed, jobs


def sequential_direct(devices: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for dev in devices:
        direct_once(dev)
    return time.perf_counter() - started


def bench_parallel(stack: Stack, fleet: list[dict[str, Any]], runs: int) -> dict[str, Any]:
    jobs_list = [dev for dev in fleet for _ in range(2)]  # 2 jobs per device
    log(f"parallelism: {len(jobs_list)} jobs over {len(fleet)} devices, {runs} runs each")
    seq: list[float] = []
    par: list[float] = []
    durations: list[float] = []
    queue_times: list[float] = []
    for i in range(runs):
        elapsed, jobs = parallel_netpulse(stack, jobs_list)
        par.append(elapsed)
        durations += [j["duration"] for j in jobs]
        queue_times += [j["queue_time"] for j in jobs]
        log(f"  run {i + 1}: netpulse parallel {elapsed:.2f} s")
        seq.append(sequential_direct(jobs_list))
        log(f"  run {i + 1}: direct sequential {seq[-1]:.2f} s")
    return {
        "jobs": len(jobs_list),
        "sequential": median(seq),
        "parallel": median(par),
        "speedup": median(seq) / median(par),
        "seq_runs": seq,
        "par_runs": par,
        "job_duration_median": median(durations),
        "job_duration_max": max(durations),
        "queue_time_max": max(queue_times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=20, help="FIFO worker processes")
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--overhead-runs", type=int, default=20)
    parser.add_argument("--parallel-runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    t0 = time.monotonic()

    with Fleet("cisco_ios", args.devices) as fleet, Stack(fifo_workers=args.workers) as stack:
        overhead = bench_overhead(stack, fleet.devices[0], args.overhead_runs)
        parallel = bench_parallel(stack, fleet.devices, args.parallel_runs)
    elapsed = time.monotonic() - t0

    rows = [
        [
            f"Queueing overhead: `{COMMAND}` (enable) on 1 FakeNOS cisco_ios, "
            f"median of {args.overhead_runs}",
            f"direct netmiko {overhead['direct']:.3f} s; NetPulse POST+GET?wait "
            f"{overhead['netpulse']:.3f} s",
            f"ratio **{overhead['ratio']:.3f}**",
            "<= 1.2",
            "PASS" if overhead["ratio"] <= 1.2 else "MISS",
        ],
        [
            f"Parallelism: {parallel['jobs']} jobs over {args.devices} devices, "
            f"{args.workers} FIFO workers, median of {args.parallel_runs}",
            f"direct sequential {parallel['sequential']:.2f} s; NetPulse parallel "
            f"{parallel['parallel']:.2f} s",
            f"speed-up **{parallel['speedup']:.1f}x**",
            ">= 6x",
            "PASS" if parallel["speedup"] >= 6 else "MISS",
        ],
    ]
    headers = ["Benchmark", "Measured", "Result", "Target", "Verdict"]
    details = (
        f"- Overhead detail: direct min/max {overhead['direct_min']:.3f}/"
        f"{overhead['direct_max']:.3f} s; NetPulse min/max {overhead['netpulse_min']:.3f}/"
        f"{overhead['netpulse_max']:.3f} s; inside the worker (started_at to ended_at) median "
        f"{overhead['job_duration']:.3f} s; queue time (enqueued_at to started_at) median "
        f"{overhead['queue_time'] * 1000:.1f} ms.\n"
        f"- Parallel detail: sequential runs "
        f"{', '.join(f'{s:.2f}' for s in parallel['seq_runs'])} s; parallel runs "
        f"{', '.join(f'{s:.2f}' for s in parallel['par_runs'])} s; per-job duration in the "
        f"parallel runs median {parallel['job_duration_median']:.2f} s, max "
        f"{parallel['job_duration_max']:.2f} s; max queue time "
        f"{parallel['queue_time_max']:.2f} s.\n"
        f"- Pool size: {args.workers} FIFO workers (one RQ work-horse per job; SSH jobs mostly "
        f"wait on the device, so the pool is sized to the number of devices, not to the "
        f"{__import__('os').cpu_count()} cores).\n"
        f"- Devices: FakeNOS (netpulse.lab.fleet.LabFleet.many) in a separate process; "
        f"baseline client in the benchmark process.\n"
    )
    text = table(headers, rows)
    print()
    print(text)
    print(details)
    if not args.no_write:
        write_section(
            "core",
            "Core: queueing overhead and parallelism (bench/core.py)",
            elapsed,
            text,
            details,
        )
    log(f"done in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
