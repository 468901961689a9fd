"""Faults under load (issue 9): stop latency, a Redis restart and a Sentinel failover.

    .venv/bin/python bench/faults.py                  # every scenario, one after another
    .venv/bin/python bench/faults.py --only stop      # one of: stop, redis_restart,
                                                      #   sentinel_failover

Scenarios (each writes its own section of bench/RESULTS.md):

- ``stop``: ``DELETE /jobs/{id}`` of a running pinned netmiko job that waits for a prompt that
  never comes (``read_timeout: 120``), 10 times: seconds from the DELETE to the job's final
  state (median, max). Baseline in the same run: the same job on a FIFO worker, where RQ kills
  the work-horse.
- ``redis_restart``: 200 jobs over 20 FakeNOS devices (half pinned to a worker node, half
  FIFO), each with a webhook; once a quarter of the events arrived, Redis (append-only file on)
  is stopped, kept down ``--outage`` seconds and started again. Reported: jobs final, events
  delivered (distinct), lost, duplicates, and seconds from Redis back to the last event.
- ``sentinel_failover``: the same load on a Sentinel set (one master, one replica, three
  Sentinels, ``tests/support/sentinel.py``); ``SENTINEL FAILOVER`` once a quarter of the events
  arrived. Reported as above, plus seconds from the new master's election to the first job
  that starts on it (target: under 10 s).

Only loopback addresses are contacted. Never run two benchmarks at once (2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    FINAL,
    Fleet,
    HookReceiver,
    Stack,
    conn_args,
    log,
    wait_until,
    write_section,
)
from bench.sessions_support import Node

STOP_ROUNDS = 10
STOP_READ_TIMEOUT = 120
LOAD_JOBS = 200
LOAD_DEVICES = 20
NODE_THREADS = 20
FIFO_WORKERS = 8
#: The fault is made once this share of the events arrived (jobs are then in every state).
FAULT_AT = 0.25
FAILOVER_TARGET_S = 10.0
#: How long jobs and events may take to be final and delivered after the fault.
SETTLE_TIMEOUT = float(os.environ.get("BENCH_SETTLE_TIMEOUT", "240"))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def iso_seconds(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def job_state(stack: Stack, job_id: str) -> dict[str, Any] | None:
    """The job as the API reports it, or None while the controller cannot answer (503)."""
    assert stack.api is not None
    try:
        reply = stack.api.get(f"/jobs/{job_id}")
    except httpx.HTTPError:
        return None
    if reply.status_code != 200:
        return None
    return reply.json()


# -- stop -------------------------------------------------------------------------------------


def stuck_body(dev: dict[str, Any], strategy: str) -> dict[str, Any]:
    """A job whose read never ends by itself: netmiko waits for a prompt that never shows."""
    return {
        "driver": "netmiko",
        "queue_strategy": strategy,
        "connection_args": conn_args(dev),
        "command": "show clock",
        "driver_args": {
            "read_timeout": STOP_READ_TIMEOUT,
            "expect_string": "NEVER-SEEN-PROMPT",
            "cmd_verify": False,
        },
    }


def stop_once(stack: Stack, body: dict[str, Any]) -> float:
    """Submit, wait until it runs, DELETE; seconds from the DELETE to its final state."""
    assert stack.api is not None
    job_id = stack.submit(body)["id"]
    wait_until(
        lambda: (job_state(stack, job_id) or {}).get("status") == "started", 60, "the job to run"
    )
    time.sleep(1.5)  # past the connection (FakeNOS: 0.6-1.1 s): the read is what is measured
    started = time.monotonic()
    reply = stack.api.delete(f"/jobs/{job_id}")
    reply.raise_for_status()
    job = stack.wait_job(job_id, timeout=STOP_READ_TIMEOUT + 30)
    took = time.monotonic() - started
    if job["status"] != "stopped":
        raise RuntimeError(f"job {job_id} ended {job['status']}, not stopped: {job}")
    return took


def scenario_stop(args: argparse.Namespace) -> None:
    begun = time.monotonic()
    with (
        Fleet("arista_eos", 1) as fleet,
        Stack(fifo_workers=2) as stack,
        Node(stack, "bench-stop", 2, 10),
    ):
        dev = fleet.devices[0]
        warm = stack.wait_job(stack.submit({**stuck_body(dev, "pinned"), "driver_args": {}})["id"])
        log(f"warm-up job {warm['status']}")
        pinned = [stop_once(stack, stuck_body(dev, "pinned")) for _ in range(args.rounds)]
        log(f"pinned stops: {[round(t, 2) for t in pinned]}")
        fifo = [stop_once(stack, stuck_body(dev, "fifo")) for _ in range(args.rounds)]
        log(f"FIFO stops: {[round(t, 2) for t in fifo]}")
    ok = median(pinned) < 2.0
    table = "\n".join(
        [
            "| Benchmark | Measured | Target | Verdict |",
            "|---|---|---|---|",
            f"| DELETE of a running pinned netmiko job (`read_timeout: {STOP_READ_TIMEOUT}`), "
            f"{args.rounds} rounds | median **{median(pinned):.2f} s**, max {max(pinned):.2f} s; "
            f"baseline FIFO stop median {median(fifo):.2f} s (ratio "
            f"{median(pinned) / median(fifo):.1f}) | median < 2 s | "
            f"{'PASS' if ok else 'FAIL'} |",
        ]
    )
    detail = (
        f"- Device: 1 FakeNOS arista_eos; the job sends `show clock` and waits for "
        f"`expect_string` NEVER-SEEN-PROMPT with `cmd_verify: false`, so its read only ends by "
        f"the stop (or after {STOP_READ_TIMEOUT} s). Measured from the DELETE request to the "
        f"job's final state read with `GET /jobs/{{id}}?wait`.\n"
        f"- Rounds (s): pinned {[round(t, 2) for t in pinned]}; FIFO "
        f"{[round(t, 2) for t in fifo]}."
    )
    write_section(
        "faults-stop",
        "Faults: stopping a running job (bench/faults.py --only stop)",
        time.monotonic() - begun,
        table,
        detail,
    )


# -- load under a fault -----------------------------------------------------------------------


class Load:
    """200 jobs over 20 devices, each with a webhook whose path names its job."""

    def __init__(self, stack: Stack, receiver: HookReceiver, devices: list[dict[str, Any]]):
        self.stack, self.receiver, self.devices = stack, receiver, devices
        self.ids: list[str] = []

    def submit_all(self, count: int) -> None:
        for index in range(count):
            dev = self.devices[index % len(self.devices)]
            body = {
                "driver": "netmiko",
                "queue_strategy": "pinned" if index % 2 == 0 else "fifo",
                "connection_args": conn_args(dev),
                "command": "show clock",
                "webhook": {"url": self.receiver.url(f"/hook/{index}")},
            }
            self.ids.append(self.stack.submit(body)["id"])

    def received(self) -> list[tuple[str | None, float, str]]:
        return [r for r in self.receiver.records() if r[2].startswith("/hook/")]

    def distinct_events(self) -> int:
        return len({r[2] for r in self.received()})

    def wait_events(self, count: int, timeout: float) -> None:
        wait_until(lambda: self.distinct_events() >= count, timeout, f"{count} events", 0.1)

    def settle(self, timeout: float) -> dict[str, Any]:
        """Wait (bounded) until every job is final and every event arrived; what was seen."""
        deadline = time.monotonic() + timeout
        states: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            for job_id in self.ids:
                if job_id not in states or states[job_id]["status"] not in FINAL:
                    job = job_state(self.stack, job_id)
                    if job is not None:
                        states[job_id] = job
            final = sum(1 for j in states.values() if j["status"] in FINAL)
            if final == len(self.ids) and self.distinct_events() == len(self.ids):
                break
            time.sleep(0.5)
        records = self.received()
        by_path: dict[str, int] = {}
        for _, _, path in records:
            by_path[path] = by_path.get(path, 0) + 1
        ids_per_path: dict[str, set[str | None]] = {}
        for webhook_id, _, path in records:
            ids_per_path.setdefault(path, set()).add(webhook_id)
        statuses: dict[str, int] = {}
        for job_id in self.ids:
            status = states.get(job_id, {}).get("status", "unknown")
            statuses[status] = statuses.get(status, 0) + 1
        return {
            "final": sum(1 for j in states.values() if j["status"] in FINAL),
            "statuses": statuses,
            "delivered": len(by_path),
            "lost": len(self.ids) - len(by_path),
            "duplicates": sum(n - 1 for n in by_path.values()),
            "one_webhook_id_each": all(len(ids) == 1 for ids in ids_per_path.values()),
            "last_event_at": max((r[1] for r in records), default=float("nan")),
            "states": states,
        }


def run_load_with_fault(
    stack: Stack,
    fault: Callable[[], dict[str, float]],
    jobs: int,
) -> tuple[dict[str, Any], dict[str, float]]:
    with (
        Fleet("cisco_ios", LOAD_DEVICES) as fleet,
        HookReceiver() as receiver,
        Node(stack, "bench-faults", NODE_THREADS, 100),
    ):
        load = Load(stack, receiver, fleet.devices)
        submitted = time.monotonic()
        load.submit_all(jobs)
        log(f"{jobs} jobs submitted in {time.monotonic() - submitted:.1f} s")
        load.wait_events(int(jobs * FAULT_AT), 120)
        log(f"{load.distinct_events()} events arrived; making the fault")
        times = fault()
        seen = load.settle(timeout=SETTLE_TIMEOUT)
    assert stack.redis is not None
    for job_id, job in seen["states"].items():
        if job["status"] not in FINAL:
            held = stack.redis.lrange(f"rq:queue:{job.get('queue')}:intermediate", 0, -1)
            where = "RQ's intermediate queue" if job_id.encode() in held else "not dequeued"
            log(f"not final: {job_id} {job['status']} queue {job.get('queue')} ({where})")
    log(failed_detail(seen))
    log(
        f"final {seen['final']}/{jobs}, delivered {seen['delivered']}, lost {seen['lost']}, "
        f"duplicates {seen['duplicates']}, statuses {seen['statuses']}"
    )
    return seen, times


def load_rows(seen: dict[str, Any], jobs: int) -> list[str]:
    ok = seen["final"] == jobs and seen["delivered"] == jobs and seen["lost"] == 0
    return [
        f"| Jobs final | **{seen['final']}/{jobs}** ({seen['statuses']}) | {jobs}/{jobs} | "
        f"{'PASS' if seen['final'] == jobs else 'FAIL'} |",
        f"| Final events delivered (distinct jobs) | **{seen['delivered']}/{jobs}**, lost "
        f"**{seen['lost']}**, duplicates {seen['duplicates']} (same `webhook-id` each: "
        f"{seen['one_webhook_id_each']}) | {jobs}/{jobs}, 0 lost | {'PASS' if ok else 'FAIL'} |",
    ]


def longest_start_gap(seen: dict[str, Any], around: float) -> float:
    """The longest pause between two consecutive job starts in the 30 s around ``around``
    (Unix time): how long no job could start because of the fault."""
    starts = sorted(
        s
        for s in (iso_seconds(j.get("started_at")) for j in seen["states"].values())
        if s is not None and around - 10 <= s <= around + 20
    )
    return max((b - a for a, b in itertools.pairwise(starts)), default=float("nan"))


def failed_detail(seen: dict[str, Any]) -> str:
    errors: dict[str, int] = {}
    for job in seen["states"].values():
        if job["status"] == "failed":
            error = (job.get("result") or {}).get("error") or {}
            key = f"{error.get('type')}: {str(error.get('message'))[:80]}"
            errors[key] = errors.get(key, 0) + 1
    if not errors:
        return "- No job failed."
    return "- Failed jobs by error: " + "; ".join(f"{n}x {k}" for k, n in errors.items()) + "."


def scenario_redis_restart(args: argparse.Namespace) -> None:
    begun = time.monotonic()
    with Stack(fifo_workers=FIFO_WORKERS, appendonly=True) as stack:
        server = stack.redis_server
        assert server is not None

        def restart() -> dict[str, float]:
            down = time.time()
            server.stop()
            time.sleep(args.outage)  # the outage itself: what is measured is the way back
            server.start()
            back = time.time()
            log(f"Redis down {back - down:.1f} s")
            return {"down": down, "back": back}

        # Baseline in the same run and stack: the same load, no fault at the same point.
        calm, mark = run_load_with_fault(stack, lambda: {"down": time.time()}, args.jobs)
        seen, times = run_load_with_fault(stack, restart, args.jobs)
    to_last = seen["last_event_at"] - times["back"]
    with_fault = seen["last_event_at"] - times["down"]
    without = calm["last_event_at"] - mark["down"]
    table = "\n".join(
        [
            "| Benchmark | Measured | Target | Verdict |",
            "|---|---|---|---|",
            *load_rows(seen, args.jobs),
            f"| Redis back -> last event | **{to_last:.1f} s** (Redis down "
            f"{times['back'] - times['down']:.1f} s) | reported | - |",
            f"| Longest pause between two job starts around the restart | "
            f"{longest_start_gap(seen, times['down']):.1f} s (baseline without fault: "
            f"{longest_start_gap(calm, mark['down']):.1f} s) | reported | - |",
            f"| Fault point -> last event, with the restart vs without (baseline, same run) | "
            f"{with_fault:.1f} s vs {without:.1f} s: the outage cost "
            f"**{with_fault - without:.1f} s** ({with_fault / without:.2f}x) | reported | - |",
        ]
    )
    detail = (
        f"- Load: {args.jobs} netmiko `show clock` jobs over {LOAD_DEVICES} FakeNOS cisco_ios "
        f"devices, even ones pinned to one worker node ({NODE_THREADS} threads), odd ones on "
        f"{FIFO_WORKERS} FIFO workers; each with a webhook to bench/receiver.py. Redis "
        f"(private, append-only file on) was stopped (SHUTDOWN) once {FAULT_AT:.0%} of the "
        f"events had arrived, kept down {args.outage:g} s, and started again on the same "
        "port. The baseline runs the same load first, on the same stack, without the fault "
        f"(its jobs: {calm['final']}/{args.jobs} final, {calm['delivered']} events).\n"
        f"{failed_detail(seen)}"
    )
    write_section(
        "faults-redis_restart",
        "Faults: Redis restart under load (bench/faults.py --only redis_restart)",
        time.monotonic() - begun,
        table,
        detail,
    )


def scenario_sentinel_failover(args: argparse.Namespace) -> None:
    from tests.support.sentinel import SentinelSet  # the test suite's loopback Sentinel set

    begun = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="netpulse-bench-sentinel-") as root,
        SentinelSet(Path(root)) as sentinels,
        Stack(fifo_workers=FIFO_WORKERS, redis_url=sentinels.url) as stack,
    ):
        master = sentinels.reported_master()
        assert master is not None
        with sentinels.client(master) as client:
            # As docs/deployment.md asks: a master being replaced refuses writes it would
            # discard (one replica here, so only the first master gets the setting).
            client.config_set("min-replicas-to-write", 1)
            client.config_set("min-replicas-max-lag", 10)

        def failover() -> dict[str, float]:
            asked = time.time()
            old = sentinels.failover()
            sentinels.wait_for_new_master(old)
            elected = time.time()
            log(f"new master elected {elected - asked:.1f} s after SENTINEL FAILOVER")
            return {"asked": asked, "elected": elected}

        seen, times = run_load_with_fault(stack, failover, args.jobs)
    starts = sorted(
        s
        for s in (iso_seconds(j.get("started_at")) for j in seen["states"].values())
        if s is not None and s >= times["elected"]
    )
    first_run = starts[0] - times["elected"] if starts else float("nan")
    to_last = seen["last_event_at"] - times["elected"]
    ok = bool(starts) and first_run < FAILOVER_TARGET_S
    table = "\n".join(
        [
            "| Benchmark | Measured | Target | Verdict |",
            "|---|---|---|---|",
            *load_rows(seen, args.jobs),
            f"| New master elected -> first job started on it | **{first_run:.2f} s** "
            f"(SENTINEL FAILOVER -> elected {times['elected'] - times['asked']:.1f} s) | "
            f"< {FAILOVER_TARGET_S:g} s | {'PASS' if ok else 'FAIL'} |",
            f"| Longest pause between two job starts around the failover | "
            f"**{longest_start_gap(seen, times['asked']):.2f} s** | reported | - |",
            f"| New master elected -> last event | {to_last:.1f} s | reported | - |",
        ]
    )
    detail = (
        f"- Same load as the Redis restart. Redis: one master, one replica, three "
        f"`redis-sentinel` processes on loopback (down-after 1 s), every NetPulse process on "
        f"`redis+sentinel://...`; the master with `min-replicas-to-write 1`. "
        f"`SENTINEL FAILOVER` once {FAULT_AT:.0%} of the events had "
        "arrived; 'elected' is when every Sentinel reports the replica as master and it says "
        "so itself; 'first job started' is the earliest `started_at` after that.\n"
        f"{failed_detail(seen)}"
    )
    write_section(
        "faults-sentinel_failover",
        "Faults: Sentinel failover under load (bench/faults.py --only sentinel_failover)",
        time.monotonic() - begun,
        table,
        detail,
    )


SCENARIOS: dict[str, Callable[[argparse.Namespace], None]] = {
    "stop": scenario_stop,
    "redis_restart": scenario_redis_restart,
    "sentinel_failover": scenario_sentinel_failover,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--rounds", type=int, default=STOP_ROUNDS)
    parser.add_argument("--jobs", type=int, default=LOAD_JOBS)
    parser.add_argument("--outage", type=float, default=3.0, help="seconds Redis stays down")
    args = parser.parse_args()
    for name in args.only or list(SCENARIOS):
        log(f"scenario {name}")
        SCENARIOS[name](args)


if __name__ == "__main__":
    main()
