"""Job timeouts: a job past its ``execution_timeout`` ends failed soon after it.

    cd /work/main && .venv/bin/python bench/timeouts.py [--runs 10] [--timeout 1]
        [--limit 1.5] [--no-write]

A pinned job (on a worker node, warm session) and a FIFO job (RQ work-horse, connects per job),
each with ``execution_timeout: 1``, run a command that takes about 3 s on FakeNOS cisco_ios
(it echoes input one byte per 10 ms: ``"show version " + "x" * 300``, as
tests/integration/test_timeouts.py). Target: each ends ``failed`` (error type ``timeout``)
within 1.5 s. Measured per job, --runs of each (pinned and FIFO alternate, the order swapped
every round):

- in the worker: the job's ``ended_at - started_at`` (RQ's timestamps);
- as the client sees it: from just before ``POST /device/exec`` to the answer of
  ``GET /jobs/{id}?wait=`` that shows the job final (the server-side wait, bench.common's
  ``Stack.wait_job``).

Before each timed pinned job a ``show clock`` pinned job runs on the same device: it checks
that the device takes the next job after a timeout, and it opens the session again (a timed-out
job's session is closed at once), so the timed job's second starts with the slow command, not
with the login. Before each timed FIFO job a FIFO ``show clock`` job runs too: its duration
(connect + command + disconnect) shows how much of the FIFO job's second the login takes.

The lab is FakeNOS in a child process (bench.common.Fleet); the stack is a private
redis-server, the controller, a FIFO pool of 2 and one worker node, all on 127.0.0.1; no
webhook delivery service (the jobs have no webhook). Results go to bench/RESULTS.md, section
"timeouts".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.common as common
from bench.common import (
    Fleet,
    Stack,
    conn_args,
    git_head,
    log,
    median,
    parse_ts,
    table,
    wait_for_quiet,
    write_section,
)
from bench.sessions_support import LoadMeter, Node, describe_load

SECTION = "timeouts"
#: FakeNOS echoes input one byte per 10 ms: about 3 s to send this.
SLOW_COMMAND = "show version " + "x" * 300
QUICK_COMMAND = "show clock"
STRATEGIES = ("pinned", "fifo")


def body(dev: dict[str, Any], strategy: str, command: str, timeout: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "driver": "netmiko",
        "connection_args": conn_args(dev),
        "command": command,
        "queue_strategy": strategy,
    }
    if timeout is not None:
        out["execution_timeout"] = timeout
    return out


def run_job(stack: Stack, payload: dict[str, Any]) -> tuple[dict[str, Any], float, float]:
    """Submit, then wait with ``GET /jobs/{id}?wait=`` until final; the job, the client's
    Unix time just before the POST and when the final answer arrived."""
    submitted = time.time()
    created = stack.submit(payload)
    job = stack.wait_job(created["id"], timeout=60)
    return job, submitted, time.time()


def one_run(stack: Stack, dev: dict[str, Any], strategy: str, timeout: int) -> dict[str, Any]:
    """A ``show clock`` job (the device takes jobs; pinned: opens the session), then the
    timed slow job."""
    quick, _, _ = run_job(stack, body(dev, strategy, QUICK_COMMAND, None))
    if quick["status"] != "finished":
        raise RuntimeError(f"{strategy} {QUICK_COMMAND!r} ended {quick['status']}: {quick}")
    meta = quick["result"]["retval"][0].get("metadata") or {}
    job, submitted, seen = run_job(stack, body(dev, strategy, SLOW_COMMAND, timeout))
    error = (job.get("result") or {}).get("error") or {}
    started, ended = parse_ts(job["started_at"]), parse_ts(job["ended_at"])
    return {
        "strategy": strategy,
        "id": job["id"],
        "status": job["status"],
        "error_type": error.get("type"),
        "error": str(error.get("message", ""))[:160],
        "in_worker": ended - started,
        "client": seen - submitted,
        "submit_to_start": started - submitted,
        "end_to_client": seen - ended,
        "queue": job["queue"],
        "quick_duration": quick["duration"],
        "quick_reused": meta.get("session_reused"),
    }


def bench(args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in STRATEGIES}
    with (
        Fleet("cisco_ios", 2) as fleet,
        Stack(fifo_workers=2, delivery=False) as stack,
        Node(stack, "bench-timeouts", 4, 10),
    ):
        devices = {"pinned": fleet.devices[0], "fifo": fleet.devices[1]}
        # Warm-up (not counted): one of each.
        for strategy in STRATEGIES:
            one_run(stack, devices[strategy], strategy, args.timeout)
        meter = LoadMeter()
        for round_no in range(args.runs):
            order = STRATEGIES if round_no % 2 == 0 else STRATEGIES[::-1]
            for strategy in order:
                r = one_run(stack, devices[strategy], strategy, args.timeout)
                runs[strategy].append(r)
                log(
                    f"  {round_no + 1}/{args.runs} {strategy}: {r['status']} "
                    f"({r['error_type']}), ended_at - started_at {r['in_worker']:.3f} s, "
                    f"submit -> final {r['client']:.3f} s (queue {r['queue']})"
                )
        load = meter.stop()
    return {"runs": runs, "load": load}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(args: argparse.Namespace, res: dict[str, Any]) -> tuple[str, str]:
    rows: list[list[Any]] = []
    notes: list[str] = []
    for strategy in STRATEGIES:
        rs = res["runs"][strategy]
        worker = [r["in_worker"] for r in rs]
        client = [r["client"] for r in rs]
        failed_timeout = sum(r["status"] == "failed" and r["error_type"] == "timeout" for r in rs)
        label = "pinned (worker node, warm session)" if strategy == "pinned" else "FIFO"
        for what, values in (
            ("ended_at - started_at", worker),
            ("submit -> final (client, GET ?wait=)", client),
        ):
            rows.append(
                [
                    f"{label} job, `execution_timeout: {args.timeout}`, a ~3 s command: "
                    f"{what}, {len(rs)} runs",
                    f"median **{median(values):.3f} s**, max **{max(values):.3f} s**; "
                    f"{failed_timeout}/{len(rs)} failed with a timeout error",
                    f"failed within {args.limit:g} s",
                    verdict(max(values) <= args.limit and failed_timeout == len(rs)),
                ]
            )
        quick = [r["quick_duration"] for r in rs]
        notes.append(
            f"- {strategy}: submit -> started_at median "
            f"{median(r['submit_to_start'] for r in rs) * 1000:.0f} ms, ended_at -> the "
            f"client's final answer median {median(r['end_to_client'] for r in rs) * 1000:.0f} "
            f"ms (max {max(r['end_to_client'] for r in rs) * 1000:.0f} ms); per run "
            f"ended_at - started_at {[round(x, 3) for x in worker]} s, client "
            f"{[round(x, 3) for x in client]} s; error messages "
            f"{sorted({r['error'] for r in rs})}; queues {sorted({r['queue'] for r in rs})}. "
            f"The `{QUICK_COMMAND}` job before each (same device, same strategy) finished every "
            f"time, duration median {median(quick) * 1000:.0f} ms"
            + (
                f", on a reused session {sum(bool(r['quick_reused']) for r in rs)}/{len(rs)} "
                "times (a timed-out job's session is closed, so this job opens it again)"
                if strategy == "pinned"
                else " (connect + command + disconnect: the login's share of the FIFO job's second)"
            )
            + "."
        )
    notes.append(
        f"- Command: `{SLOW_COMMAND[:20]}...` ({len(SLOW_COMMAND)} characters; FakeNOS "
        "cisco_ios echoes one byte per 10 ms, so about 3 s). Pinned and FIFO alternate, the "
        f"order swapped every round, after one warm-up of each. {describe_load(res['load'])}."
    )
    notes.append(
        "- Setup: private redis-server, controller, FIFO pool of 2 (`netpulse worker fifo`), "
        "one worker node (`netpulse worker node --threads 4 --capacity 10`), no delivery "
        "service; FakeNOS (2 cisco_ios devices: one for the pinned jobs, one for the FIFO "
        "ones) in its own process (bench/fleet_proc.py); the client (httpx) in this process. "
        f"Product: commit {git_head()} of /work/main (other engineers' uncommitted edits may "
        "be present)."
    )
    return table(["Benchmark", "Measured", "Target", "Verdict"], rows), "\n".join(notes) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed jobs of each strategy")
    parser.add_argument("--timeout", type=int, default=1, help="execution_timeout (s)")
    parser.add_argument("--limit", type=float, default=1.5, help="target (s)")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    quiet = wait_for_quiet(max_wait=300)
    common.LOAD_AT_START = quiet["start"]
    t0 = time.monotonic()
    res = bench(args)
    text, notes = report(args, res)
    elapsed = time.monotonic() - t0
    print()
    print(text)
    print(notes)
    if not args.no_write:
        write_section(
            SECTION,
            "Job timeouts: a job past its execution_timeout (bench/timeouts.py)",
            elapsed,
            text,
            notes,
        )
    log(f"done in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
