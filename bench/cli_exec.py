"""`netpulse exec` over 1,000 rows of the lab fleet: does its progress bar stay live?

    cd /work/main && .venv/bin/python bench/cli_exec.py [--rows 1000] [--devices 20]
        [--node-threads 20] [--load-limit 1.0] [--no-write]

A stack of bench/common.py (private Redis, controller, 2 FIFO workers, webhook delivery)
plus one worker node (bench/sessions_support.Node), and ``--devices`` FakeNOS cisco_ios
devices (bench/common.Fleet, its own process). A device file of ``--rows`` rows, round robin
over the devices (all on 127.0.0.1, so each bulk request holds one row: see
netpulse/cli/bulk_request.py), then ``netpulse exec devices.csv -c "show clock"`` in a
pseudo-terminal, as a user runs it, with its progress bar drawn as on a screen.

Measured from what the terminal receives (timestamped as it arrives):

* redraws of the progress bar: count, and the largest gap between two (target <= 1 s);
* how fresh the counts are: for the k-th job to end (its ``ended_at``), the time until a
  redraw shows at least k jobs ended (median, p95, max), and the largest gap between two
  changes of the ended count while jobs end;
* the CLI's HTTP requests by kind (counted inside the CLI process by wrapping
  ``httpx.Client.send``; this script runs the CLI through ``--as-cli``) and per job, its
  CPU time and peak memory;
* run time: first request to exit, and the submission.

Runs only when the 1-minute load average is below ``--load-limit`` (this machine has 2 cores
and others share it): it waits (bounded) and gives up without writing otherwise.
Results: section "cli-exec" at the end of bench/RESULTS.md. Everything is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

#: The progress line: "jobs ━━━ 12/1000 done 11 failed 1 queued 988 to submit 0 0:00:03".
PROGRESS = re.compile(
    r"(?P<what>submitting|jobs)\s.*?(?P<ended>\d+)/(?P<total>\d+)\s+done (?P<done>\d+) "
    r"failed (?P<failed>\d+) queued (?P<queued>\d+)(?: to submit (?P<unsent>\d+))?"
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COMMAND = "show clock"


def as_cli(stats_file: str, argv: list[str]) -> None:
    """Run `netpulse` with ``argv`` in this process, counting its HTTP requests; the counts
    go to ``stats_file`` at exit. Nothing else differs from the installed command."""
    import atexit
    import threading

    import httpx

    counts: dict[str, int] = {}
    lock = threading.Lock()
    send = httpx.Client.send

    def counted(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        path = request.url.path
        kind = f"{request.method} " + ("/jobs/{id}" if path.startswith("/jobs/") else path)
        with lock:
            counts[kind] = counts.get(kind, 0) + 1
        return send(self, request, **kwargs)

    httpx.Client.send = counted  # type: ignore[method-assign]
    atexit.register(lambda: Path(stats_file).write_text(json.dumps(counts)))
    from netpulse.cli.main import app

    app(argv, prog_name="netpulse")


def wait_for_load(limit: float, max_wait: float) -> tuple[bool, str, float]:
    """Wait until the 1-minute load average is below ``limit``; (quiet, load, seconds)."""
    from bench.common import load_average, log

    started = time.monotonic()
    while os.getloadavg()[0] >= limit:
        if time.monotonic() - started > max_wait:
            return False, load_average(), time.monotonic() - started
        log(f"load average {load_average()} >= {limit}: waiting 30 s")
        time.sleep(30)
    return True, load_average(), time.monotonic() - started


def write_devices(path: Path, devices: list[dict[str, Any]], rows: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Selected", "Name", "Vendor", "IP", "Port", "Username", "Password"])
        for index in range(rows):
            dev = devices[index % len(devices)]
            writer.writerow(
                [
                    True,
                    dev["name"],
                    "Cisco",
                    dev["host"],
                    dev["port"],
                    dev["username"],
                    dev["password"],
                ]
            )


def run_in_pty(
    argv: list[str], env: dict[str, str], timeout: float
) -> tuple[list[tuple[float, str]], int, Any]:
    """Run ``argv`` with a pseudo-terminal as stdout and stderr; the text it wrote, in
    (arrival time, chunk) pieces, its exit status and its resource usage (``wait4``)."""
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks: list[tuple[float, str]] = []
    deadline = time.monotonic() + timeout
    reaped: tuple[int, int, Any] | None = None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    reaped = (pid, status, usage)
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append((time.time(), data.decode(errors="replace")))
    finally:
        os.close(master)
    if reaped is None:
        if time.monotonic() >= deadline:
            proc.kill()
        reaped = os.wait4(proc.pid, 0)
    _, status, usage = reaped
    proc.returncode = os.waitstatus_to_exitcode(status)
    return chunks, proc.returncode, usage


def redraws(chunks: list[tuple[float, str]]) -> list[tuple[float, dict[str, int], str]]:
    """Every progress line drawn: (time it arrived, its numbers, submitting|jobs)."""
    seen: list[tuple[float, dict[str, int], str]] = []
    pending = ""
    for at, text in chunks:
        pending += text
        *complete, pending = re.split(r"[\r\n]", pending)
        for segment in complete:
            match = PROGRESS.search(ANSI.sub("", segment))
            if match:
                numbers = {k: int(v) for k, v in match.groupdict().items() if v and v.isdigit()}
                seen.append((at, numbers, match["what"]))
    return seen


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--node-threads", type=int, default=20)
    parser.add_argument("--load-limit", type=float, default=1.0)
    parser.add_argument("--max-load-wait", type=float, default=1200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from bench.common import (
        API_KEY,
        Fleet,
        Stack,
        load_average,
        log,
        machine,
        parse_ts,
        percentile,
        table,
        write_section,
    )
    from bench.sessions_support import Node

    began = time.monotonic()
    quiet, load_before, waited = wait_for_load(args.load_limit, args.max_load_wait)
    if not quiet:
        log(f"load average still {load_before} after {waited:.0f} s: not measuring")
        sys.exit(3)
    log(f"load average {load_before} (waited {waited:.0f} s): measuring")

    work = Path(tempfile.mkdtemp(prefix="netpulse-bench-cli-"))
    with (
        Fleet("cisco_ios", args.devices) as fleet,
        Stack(fifo_workers=2) as stack,
        Node(stack, "bench-cli", args.node_threads, max(args.devices, 100)),
    ):
        devices_csv = work / "devices.csv"
        write_devices(devices_csv, fleet.devices, args.rows)
        stats = work / "requests.json"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("NETPULSE_")},
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
            "NETPULSE_API_KEY": API_KEY,
            "COLUMNS": "140",
            "TERM": "xterm-256color",
        }
        cli_args = [
            "exec",
            str(devices_csv),
            "-c",
            COMMAND,
            "--url",
            stack.url,
            "--output",
            str(work),
        ]
        argv = [sys.executable, __file__, "--as-cli", str(stats), "--", *cli_args]
        log(f"netpulse {' '.join(cli_args)}")
        load_at_run = load_average()
        started = time.time()
        chunks, code, usage = run_in_pty(argv, env, timeout=900)
        ended = time.time()
        load_after = load_average()
        text = "".join(t for _, t in chunks)
        log(f"exit {code} after {ended - started:.1f} s")
        (result,) = work.glob("result_*.csv")
        with result.open(newline="") as handle:
            lines = list(csv.DictReader(handle))
        assert stack.api is not None
        jobs = stack.api.get(
            "/jobs", params={"status": "finished", "limit": 10000}, timeout=120
        ).json()
    requests = json.loads(stats.read_text())
    if os.environ.get("BENCH_KEEP_LOGS") != "1":  # as bench/common.Stack does with its logs
        shutil.rmtree(work, ignore_errors=True)

    drawn = redraws(chunks)
    if code != 0 or len(lines) != args.rows or not drawn:
        print(ANSI.sub("", text)[-3000:])
        raise SystemExit(f"netpulse exec failed: exit {code}, {len(lines)} result lines")
    ours = {line["job id"] for line in lines}
    ends = sorted(parse_ts(j["ended_at"]) for j in jobs if j["id"] in ours)
    times = [t for t, _, _ in drawn]
    redraw_gaps = gaps(times)
    # Freshness: the k-th end is shown by the first redraw with at least k jobs ended.
    lags = []
    cursor = 0
    for k, end in enumerate(ends, start=1):
        while cursor < len(drawn) and drawn[cursor][1]["ended"] < k:
            cursor += 1
        if cursor < len(drawn):
            lags.append(max(0.0, drawn[cursor][0] - end))
    changes = [drawn[0][0]] + [
        t
        for (t, n, _), (_, p, _) in zip(drawn[1:], drawn, strict=False)
        if n["ended"] != p["ended"]
    ]
    submitted_at = next((t for t, n, what in drawn if n.get("unsent", 0) == 0), times[0])
    first_end, last_end = ends[0], ends[-1]
    while_ending = [t for t in changes if first_end <= t <= last_end + 1]
    polls = requests.get("GET /jobs/{id}", 0)
    posts = requests.get("POST /device/bulk", 0)
    cpu = usage.ru_utime + usage.ru_stime
    max_gap = max(redraw_gaps)

    rows = [
        [
            "Progress bar redraws (from the first to the last)",
            f"{len(drawn)} redraws over {times[-1] - times[0]:.1f} s; gap median "
            f"{statistics.median(redraw_gaps) * 1000:.0f} ms, p99 "
            f"{percentile(redraw_gaps, 99) * 1000:.0f} ms",
            f"max gap **{max_gap * 1000:.0f} ms**",
            "<= 1 s",
            "PASS" if max_gap <= 1.0 else "MISS",
        ],
        [
            "Counts fresh: a job's `ended_at` to the first redraw counting it",
            f"{len(lags)} jobs; median {statistics.median(lags) * 1000:.0f} ms, p95 "
            f"{percentile(lags, 95) * 1000:.0f} ms",
            f"max **{max(lags) * 1000:.0f} ms**",
            "-",
            "reported",
        ],
        [
            "Largest gap between two changes of the ended count while jobs end",
            f"{len(while_ending)} changes from the first end to the last",
            f"**{max(gaps(while_ending) or [0]) * 1000:.0f} ms**",
            "-",
            "reported",
        ],
        [
            f"CLI requests for {args.rows} jobs",
            ", ".join(f"{k}: {v}" for k, v in sorted(requests.items())),
            f"**{polls / args.rows:.2f}** job reads per job",
            "not one per job per second",
            "PASS" if polls < 2 * args.rows else "MISS",
        ],
        [
            "Run: the CLI process from start to exit; submission (all rows sent)",
            f"{ended - started:.1f} s; submitted after {submitted_at - started:.1f} s "
            f"({posts} bulk requests); jobs ended {last_end - first_end:.1f} s apart",
            f"{args.rows / (ended - started):.0f} jobs/s",
            "-",
            "reported",
        ],
        [
            "CLI process: CPU (user + system), peak memory",
            f"{cpu:.1f} s CPU over {ended - started:.1f} s; "
            f"max RSS {usage.ru_maxrss / 1024:.0f} MiB",
            f"**{cpu / args.rows * 1000:.1f} ms** CPU per job",
            "-",
            "reported",
        ],
    ]
    report = table(["Benchmark", "Measured", "Result", "Target", "Verdict"], rows)
    notes = (
        f"- Setup: {args.rows} rows round robin over {args.devices} FakeNOS cisco_ios devices "
        f"(bench/common.Fleet, all on 127.0.0.1), `{COMMAND}`, pinned (netmiko's default) on "
        f"one worker node (`--threads {args.node_threads}`), stack of bench/common.Stack (2 FIFO "
        "workers, webhook delivery). The CLI ran in a pseudo-terminal (140 columns) through "
        "`bench/cli_exec.py --as-cli`, which only wraps `httpx.Client.send` to count requests; "
        f"exit {code}, {len(lines)} result lines, all `finished` with exit status 0: "
        f"{all(r['status'] == 'finished' and r['show clock: exit'] == '0' for r in lines)}.\n"
        f"- Load average (1/5/15 min): {load_before} before (waited {waited:.0f} s for < "
        f"{args.load_limit}), {load_at_run} at the start of the CLI, {load_after} at its end. "
        f"Machine: {machine()}.\n"
        "- The CLI redraws every 0.25 s (`TICK`) from its board; the counts come from 8 "
        "watchers, each holding one `GET /jobs/{id}?wait=5` on the oldest job not ended, "
        "answered when that job ends. All rows share one address, so each bulk request "
        "holds one row (a refusal names only the host); distinct addresses fill requests "
        "to `--chunk-size` (100).\n"
        "- Freshness counts a job as shown when a redraw shows at least k jobs ended for the "
        "k-th `ended_at` (the server's clock, this machine's); the lag includes the watcher's "
        "round trip and the wait for the next redraw (up to 0.25 s)."
    )
    print(report)
    print(notes)
    if not args.no_write:
        write_section(
            "cli-exec",
            "netpulse exec: 1,000 rows, progress bar liveness (bench/cli_exec.py)",
            time.monotonic() - began,
            report,
            notes,
        )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--as-cli":
        separator = sys.argv.index("--")
        as_cli(sys.argv[2], sys.argv[separator + 1 :])
    else:
        main()
