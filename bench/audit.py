"""Audit trail benchmarks (issue 16): what the trail costs pinned jobs, and how far the
archiver (``netpulse worker audit``) runs behind the stream.

    cd /work/main && flock /tmp/netpulse-bench.lock .venv/bin/python bench/audit.py
        [--parts throughput,lag,batch] [--rounds 4] [--configs off,sqlite,postgresql,stream]
        [--tp-devices 100] [--tp-commands 20] [--tp-threads 16] [--lag-rate 500]
        [--lag-seconds 20] [--lag-output-bytes 1024] [--sample-ms 100]
        [--batch-sizes 1,2,5,20,100,500] [--batch-records 2000] [--max-wait 600] [--no-write]

1. throughput: ``--tp-devices`` fastsim devices x ``--tp-commands`` commands, submitted with
   ``POST /device/bulk`` as pinned jobs on one worker node (bench/sessions.py's throughput
   part: ``run_jobs``; each run starts cold, on a new node), with the audit trail
   - off: ``NETPULSE_AUDIT__MODE=none``, no archiver;
   - on, SQLite: mode ``full``, ``netpulse worker audit`` on ``<data_dir>/audit.db``;
   - on, PostgreSQL: mode ``full``, the archiver on a database of its own on 127.0.0.1:5432;
   - stream (diagnostic): mode ``full`` and no archiver (the records pile up in the stream),
     to tell what the records cost the product path from what the archiver costs the machine.
   A fresh stack (bench.common.Stack) per run; ``--rounds`` rounds in ABC CBA ... order (a
   load that drifts falls on every configuration alike). The rate is finished jobs / (first
   submit -> last ``ended_at``), as in bench/sessions.py. With the trail on, the run also waits
   for the archiver to have written every job's end, and checks rows == jobs.
   Target: the median rate with the trail on >= 0.97 x the median with it off, per store.
2. lag: this process adds audit records to the stream (``netpulse.audit.stream.submitted`` /
   ``ended``, ``stream.add``, one pipeline per 10 ms tick) at ``--lag-rate`` jobs/s for
   ``--lag-seconds`` (each job: its submission, then its end 100 ms later, with
   ``--lag-output-bytes`` of output) while ``netpulse worker audit`` runs against SQLite, then
   PostgreSQL. A thread reads the store every ``--sample-ms`` (the rows from the oldest job not
   yet seen complete onward); a record's lag = the start of the first read that shows it
   (an upper bound) - its XADD time (the ms in its stream id, Redis' clock, this machine's).
   Target: lag under 1 s (max); nothing lost (rows == jobs, each with its submission and end).
3. batch (diagnostic): the product's ``Archiver.step`` in this process on a stream filled
   beforehand, with ``audit.batch_size`` 1 ... 500: CPU per record of the archiver, of
   redis-server and of the PostgreSQL backend, by batch size.

The script first waits (bounded, bench.common.wait_for_quiet) for the load to settle. Never
run two benchmarks at once: the machine's benchmarks share ``/tmp/netpulse-bench.lock``.
Everything listens on 127.0.0.0/8 (PostgreSQL: 127.0.0.1:5432, trust auth for root).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Child,
    Stack,
    command_line,
    cpu_seconds,
    log,
    median,
    percentile,
    table,
    wait_for_quiet,
    wait_until,
    write_section,
)
from bench.sessions import SMALL_POOL, errors_text, git_head, ms, process_cpu, run_jobs, verdict
from bench.sessions_support import FastFleet, Node, describe_load

SECTION = "audit"
TITLE = "Audit trail (issue 16) (bench/audit.py)"
PG_SERVER = "postgresql://root@127.0.0.1:5432"
#: Throughput configurations: the trail off, on with each store, and (a diagnostic) full
#: records with no archiver, to tell the records' cost from the archiver's.
CONFIGS = ("off", "sqlite", "postgresql", "stream")
ARCHIVED = ("sqlite", "postgresql")
SHORT = {"off": "off", "sqlite": "on", "postgresql": "on", "stream": "records only"}
LABEL = {
    "off": "off",
    "sqlite": "on, SQLite",
    "postgresql": "on, PostgreSQL",
    "stream": "records only (mode full, no archiver)",
}
TP_TARGET = 0.97
LAG_TARGET = 1.0
ARCHIVER_NAME = "bench-audit"
LAG_PREFIX = "lag-"
END_DELAY = 0.1  # a lag job's end is added this long after its submission
TICK = 0.01


# -- the store and the archiver -----------------------------------------------------------------


class PgDatabase:
    """A PostgreSQL database of our own for one run (dropped after it, with its backends)."""

    def __init__(self, tag: str) -> None:
        self.name = f"np_bench_audit_{os.getpid()}_{tag}"
        self.url = f"{PG_SERVER}/{self.name}"

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True)

    def __enter__(self) -> PgDatabase:
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self

    def backend_pids(self) -> list[int]:
        """The server processes serving this database's connections (their CPU is the
        store's share of the work)."""
        with self._admin() as conn:
            found = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.name,)
            ).fetchall()
        return [int(row[0]) for row in found]

    def __exit__(self, *exc: Any) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def audit_env(store: str, pg: PgDatabase | None) -> dict[str, str]:
    """The stack's audit settings for ``store``; clears the previous stack's from this process
    (bench.common.Stack copies its NETPULSE_ settings into os.environ)."""
    for key in [k for k in os.environ if k.startswith("NETPULSE_AUDIT__")]:
        del os.environ[key]
    if store == "off":
        return {"NETPULSE_AUDIT__MODE": "none"}
    if store == "stream":
        return {"NETPULSE_AUDIT__MODE": "full"}
    env = {"NETPULSE_AUDIT__MODE": "full"}
    if store == "postgresql":
        assert pg is not None
        env["NETPULSE_AUDIT__URL"] = pg.url
    return env


class Archiver:
    """``netpulse worker audit`` as a child of the stack (its log in the stack's directory)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.child: Child | None = None

    def __enter__(self) -> Archiver:
        from netpulse.audit import stream

        started = time.monotonic()
        self.child = self.stack._netpulse("audit", ["worker", "audit", "--name", ARCHIVER_NAME])
        redis = self.stack.redis
        assert redis is not None

        def ready() -> bool:
            # The group is created once the store has its schema (archiver.run).
            if not self.alive():
                raise RuntimeError(f"the archiver exited; see {self.child.log_path}")
            try:
                return any(
                    g["name"] in (stream.GROUP, stream.GROUP.encode())
                    for g in redis.xinfo_groups(stream.STREAM)
                )
            except Exception:
                return False

        wait_until(ready, 60, "the audit archiver", interval=0.1)
        log(f"archiver up in {time.monotonic() - started:.1f} s, pid {self.pid}")
        return self

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()

    def __exit__(self, *exc: Any) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None


def store_engine() -> Any:
    """An engine on the store the current stack's archiver writes (autocommit reads)."""
    from sqlalchemy import create_engine

    from netpulse.audit.database import store_url
    from netpulse.config import get_settings

    url = store_url(get_settings())
    return create_engine(url).execution_options(isolation_level="AUTOCOMMIT")


def store_counts(engine: Any) -> dict[str, int]:
    from sqlalchemy import text

    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*), "
                "coalesce(sum(CASE WHEN submitted_at IS NOT NULL THEN 1 ELSE 0 END), 0), "
                "coalesce(sum(CASE WHEN status = 'finished' THEN 1 ELSE 0 END), 0) "
                "FROM audit_jobs"
            )
        ).one()
    return {"rows": int(row[0]), "submitted": int(row[1]), "finished": int(row[2])}


def last_ended_at(engine: Any) -> float:
    """The newest ``ended_at`` in the store (Unix time; SQLite's naive values are UTC)."""
    from datetime import UTC

    from sqlalchemy import func, select

    from netpulse.audit.schema import audit_jobs

    with engine.connect() as conn:
        value = conn.execute(select(func.max(audit_jobs.c.ended_at))).scalar_one()
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def stream_state(stack: Stack) -> dict[str, int]:
    """Records left in the audit stream, and those read but not acknowledged."""
    from netpulse.audit import stream

    redis = stack.redis
    assert redis is not None
    length = int(redis.xlen(stream.STREAM))
    try:
        pending = int(redis.xpending(stream.STREAM, stream.GROUP)["pending"])
    except Exception:  # no group: no archiver ran
        pending = 0
    return {"length": length, "pending": pending}


def commandstats(stack: Stack) -> dict[str, int]:
    assert stack.redis is not None
    return {
        k.removeprefix("cmdstat_"): v["calls"] for k, v in stack.redis.info("commandstats").items()
    }


def cpu_of(pids: list[int]) -> float:
    return sum(v for v in (cpu_seconds(p) for p in pids) if v == v)


# -- 1. throughput ------------------------------------------------------------------------------


def throughput_order(configs: list[str], rounds: int) -> list[str]:
    """ABC CBA ABC ...: each configuration as often early as late in a round."""
    order: list[str] = []
    for r in range(rounds):
        order += configs if r % 2 == 0 else configs[::-1]
    return order


def throughput_run(
    fleet: FastFleet, store: str, index: int, args: argparse.Namespace
) -> dict[str, Any]:
    commands = [f"echo round-{i:02d}" for i in range(args.tp_commands)]
    n = args.tp_devices * args.tp_commands
    capacity = max(args.tp_devices, 100) + 50
    pg_cm = PgDatabase(f"tp{index}") if store == "postgresql" else contextlib.nullcontext()
    with pg_cm as pg:
        env = audit_env(store, pg)
        with Stack(fifo_workers=SMALL_POOL, delivery=False, extra_env=env) as stack:
            archiver_cm = Archiver(stack) if store in ARCHIVED else contextlib.nullcontext()
            with archiver_cm as archiver:
                engine = store_engine() if archiver is not None else None
                with Node(stack, f"bench-audit-{index}", args.tp_threads, capacity) as node:
                    pg_pids = pg.backend_pids() if pg is not None else []
                    cpu0 = process_cpu(stack, node)
                    arch0 = cpu_seconds(archiver.pid) if archiver else 0.0
                    pg0 = cpu_of(pg_pids)
                    stats0 = commandstats(stack)
                    run = run_jobs(stack, fleet.devices, commands, "pinned", timeout=300)
                    cpu1 = process_cpu(stack, node)
                    run["cpu_ms"] = {k: (cpu1[k] - cpu0[k]) / n * 1000 for k in cpu0}
                    if archiver is not None:
                        # Wait (bounded) for every end in the store, then its CPU, all of it.
                        wait_until(
                            lambda: store_counts(engine)["finished"] >= n,
                            120,
                            "the archiver to write every job's end",
                            interval=0.1,
                        )
                        run["archived_after_last_end"] = time.time() - last_ended_at(engine)
                        run["cpu_ms"]["archiver"] = (cpu_seconds(archiver.pid) - arch0) / n * 1000
                        if pg is not None:
                            # Backends that came and went meanwhile are not counted.
                            run["cpu_ms"]["postgres"] = (cpu_of(pg_pids) - pg0) / n * 1000
                        run["store"] = store_counts(engine)
                        run["counts_ok"] = run["store"]["rows"] == n == run["store"]["submitted"]
                    run["stream"] = stream_state(stack)
                    stats1 = commandstats(stack)
                    run["calls"] = {
                        k: stats1.get(k, 0) - stats0.get(k, 0)
                        for k in ("xadd", "xreadgroup", "xautoclaim", "xack", "xdel", "xlen")
                    }
                if engine is not None:
                    engine.dispose()
    run["store_kind"] = store
    return run


def bench_throughput(args: argparse.Namespace) -> dict[str, Any]:
    configs = args.configs.split(",")
    order = throughput_order(configs, args.rounds)
    n = args.tp_devices * args.tp_commands
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in configs}
    sequence: list[dict[str, Any]] = []
    with FastFleet(args.tp_devices) as fleet:
        for i, store in enumerate(order):
            log(f"throughput {i + 1}/{len(order)}: {n} pinned jobs, audit {LABEL[store]}")
            run = throughput_run(fleet, store, i, args)
            runs[store].append(run)
            sequence.append(run)
            extra = ""
            if store in ARCHIVED:
                extra = (
                    f"; archived {run['archived_after_last_end']:.2f} s after the last end, "
                    f"store {run['store']}, archiver {run['cpu_ms']['archiver']:.2f} ms/job; "
                    f"{batch_text(run['calls'], 2 * n)}"
                )
            log(
                f"  {LABEL[store]}: {run['rate']:.1f} jobs/s ({run['elapsed']:.1f} s, "
                f"{errors_text(run)}); CPU ms/job {fmt_cpu(run['cpu_ms'])}; stream "
                f"{run['stream']}{extra}; {describe_load(run['load'])}"
            )
    rates = {s: median(r["rate"] for r in runs[s]) for s in configs}
    # Paired ratios: each round's on-run against the same round's off-run.
    rounds = [sequence[k : k + len(configs)] for k in range(0, len(sequence), len(configs))]
    others = [s for s in configs if s != "off"]
    paired = {
        s: [
            next(r for r in rnd if r["store_kind"] == s)["rate"]
            / next(r for r in rnd if r["store_kind"] == "off")["rate"]
            for rnd in rounds
        ]
        for s in others
    }
    return {
        "configs": configs,
        "others": others,
        "order": order,
        "runs": runs,
        "sequence": sequence,
        "rates": rates,
        "ratio": {s: rates[s] / rates["off"] for s in others},
        "paired": paired,
        "jobs": n,
    }


def batch_text(calls: dict[str, int], records: int) -> str:
    batches = calls.get("xack", 0)
    mean = records / batches if batches else float("nan")
    return (
        f"archiver batches {batches} (XACK calls; mean {mean:.1f} records), "
        f"{calls.get('xreadgroup', 0)} XREADGROUP, {calls.get('xautoclaim', 0)} XAUTOCLAIM, "
        f"{calls.get('xlen', 0)} XLEN"
    )


def fmt_cpu(cpu: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())


# -- 2. archiver lag ----------------------------------------------------------------------------


def job_name(i: int) -> str:
    return f"{LAG_PREFIX}{i:08d}"


class RowWatcher(threading.Thread):
    """Reads the store every ``interval``: when each job's submission and end first show."""

    def __init__(self, engine: Any, jobs: int, interval: float) -> None:
        super().__init__(name="row-watcher", daemon=True)
        self.engine, self.jobs, self.interval = engine, jobs, interval
        self.sub_seen = [0.0] * jobs
        self.end_seen = [0.0] * jobs
        self.low = 0  # the oldest job not yet seen complete
        self.samples = 0
        self.read_seconds: list[float] = []
        self.window: list[int] = []  # rows returned per read
        self.stop = threading.Event()
        self.error: BaseException | None = None

    @property
    def complete(self) -> bool:
        return self.low >= self.jobs

    def run(self) -> None:
        from sqlalchemy import text

        query = text(
            "SELECT job_id, submitted_at IS NOT NULL, status FROM audit_jobs "
            "WHERE job_id >= :low AND job_id LIKE :prefix"
        )
        try:
            with self.engine.connect() as conn:
                next_at = time.monotonic()
                while not self.stop.is_set() and not self.complete:
                    started, wall = time.monotonic(), time.time()
                    found = conn.execute(
                        query, {"low": job_name(self.low), "prefix": LAG_PREFIX + "%"}
                    ).all()
                    self.read_seconds.append(time.monotonic() - started)
                    self.window.append(len(found))
                    self.samples += 1
                    for job_id, has_sub, status in found:
                        i = int(job_id[len(LAG_PREFIX) :])
                        if has_sub and not self.sub_seen[i]:
                            self.sub_seen[i] = wall
                        if status != "queued" and not self.end_seen[i]:
                            self.end_seen[i] = wall
                    while (
                        self.low < self.jobs and self.sub_seen[self.low] and self.end_seen[self.low]
                    ):
                        self.low += 1
                    next_at += self.interval
                    self.stop.wait(max(next_at - time.monotonic(), 0))
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def lag_records(i: int, output: str, now: float) -> tuple[dict[str, str], dict[str, str]]:
    from netpulse.audit import stream
    from netpulse.models.audit import AuditMode

    job_id = job_name(i)
    sub = stream.submitted(
        job_id,
        mode=AuditMode.FULL,
        meta={
            "submitted_by": "bench",
            "host": f"10.1.{i % 250}.1",
            "device_type": "cisco_ios",
            "driver": "netmiko",
            "strategy": "pinned",
        },
        queue="NodeQ_bench",
        kind="command",
        lines=["show version"],
        port=22,
        client="127.0.0.1",
        at=now,
    )
    end = stream.ended(
        job_id,
        mode=AuditMode.FULL,
        max_output_bytes=64 * 1024,
        status="finished",
        started_at=now + END_DELAY - 0.08,
        ended_at=now + END_DELAY,
        retval=[{"command": "show version", "stdout": output, "exit_status": 0}],
        error=None,
    )
    return sub, end


def generate(stack: Stack, jobs: int, rate: float, output: str) -> dict[str, Any]:
    """Add ``jobs`` jobs' records to the stream at ``rate`` jobs/s (each end END_DELAY after
    its submission); return each record's XADD time (from its stream id)."""
    from netpulse.audit import stream
    from netpulse.config import get_settings

    redis = stack.redis
    assert redis is not None
    max_len = get_settings().audit.stream_max_len
    sub_at = [0.0] * jobs
    end_at = [0.0] * jobs
    ends: deque[tuple[float, int, dict[str, str]]] = deque()
    sent = 0
    behind = 0.0  # the most a tick started late
    t0 = time.monotonic()
    tick = 0
    while sent < jobs or ends:
        now = time.monotonic()
        behind = max(behind, now - (t0 + tick * TICK))
        due = min(jobs, int((now - t0) * rate) + 1)
        order: list[tuple[str, int]] = []
        with redis.pipeline(transaction=False) as pipe:
            wall = time.time()
            for i in range(sent, due):
                sub, end = lag_records(i, output, wall)
                stream.add(pipe, sub, max_len)
                order.append(("sub", i))
                ends.append((now + END_DELAY, i, end))
            while ends and ends[0][0] <= now:
                _, i, end = ends.popleft()
                stream.add(pipe, end, max_len)
                order.append(("end", i))
            ids = pipe.execute() if order else []
        for (kind, i), entry_id in zip(order, ids, strict=True):
            at = int(entry_id.decode().split("-")[0]) / 1000
            (sub_at if kind == "sub" else end_at)[i] = at
        sent = due
        tick += 1
        time.sleep(max(t0 + tick * TICK - time.monotonic(), 0))
    return {
        "sub_at": sub_at,
        "end_at": end_at,
        "seconds": max(sub_at) - min(sub_at),
        "rate": (jobs - 1) / max(max(sub_at) - min(sub_at), 1e-9),
        "behind": behind,
    }


def lag_run(store: str, args: argparse.Namespace) -> dict[str, Any]:
    jobs = int(args.lag_rate * args.lag_seconds)
    line = "interface GigabitEthernet0/1 is up, line protocol is up\n"
    output = (line * (args.lag_output_bytes // len(line) + 1))[: args.lag_output_bytes]
    pg_cm = PgDatabase("lag") if store == "postgresql" else contextlib.nullcontext()
    with pg_cm as pg:
        env = audit_env(store, pg)
        with (
            Stack(fifo_workers=1, delivery=False, extra_env=env) as stack,
            Archiver(stack) as archiver,
        ):
            engine = store_engine()
            watcher = RowWatcher(engine, jobs, args.sample_ms / 1000)
            pg_pids = pg.backend_pids() if pg is not None else []
            redis_proc = getattr(stack.redis_server, "_proc", None)
            redis_pid = redis_proc.pid if redis_proc is not None else 0
            stats0 = commandstats(stack)
            cpu0 = {
                "archiver": cpu_seconds(archiver.pid),
                "redis": cpu_seconds(redis_pid),
                "postgres": cpu_of(pg_pids),
                "bench": cpu_seconds(os.getpid()),
            }
            wall0 = time.monotonic()
            watcher.start()
            log(f"lag, {LABEL[store]}: {jobs} jobs at {args.lag_rate:.0f} jobs/s")
            gen = generate(stack, jobs, args.lag_rate, output)
            gen_wall = time.monotonic() - wall0
            cpu_gen = {"archiver": cpu_seconds(archiver.pid) - cpu0["archiver"]}
            watcher.join(timeout=120)
            watcher.stop.set()
            watcher.join(timeout=10)
            total_wall = time.monotonic() - wall0
            if watcher.error is not None:
                raise RuntimeError(f"reading the store failed: {watcher.error!r}")
            cpu1 = {
                "archiver": cpu_seconds(archiver.pid),
                "redis": cpu_seconds(redis_pid),
                "postgres": cpu_of(pg_pids),
                "bench": cpu_seconds(os.getpid()),
            }
            stats1 = commandstats(stack)
            time.sleep(1.5)  # the last batch's XACK/XDEL follow its commit
            counts = store_counts(engine)
            left = stream_state(stack)
            engine.dispose()
    subs = [s - a for s, a in zip(watcher.sub_seen, gen["sub_at"], strict=True) if s]
    ends = [s - a for s, a in zip(watcher.end_seen, gen["end_at"], strict=True) if s]
    both = subs + ends
    calls = {k: stats1.get(k, 0) - stats0.get(k, 0) for k in stats1}
    batches = calls.get("xack", 0)
    res = {
        "store": store,
        "jobs": jobs,
        "gen": {k: v for k, v in gen.items() if k not in ("sub_at", "end_at")},
        "seen_subs": len(subs),
        "seen_ends": len(ends),
        "median": median(both) if both else float("nan"),
        "p99": percentile(both, 99),
        "max": max(both) if both else float("nan"),
        "end_median": median(ends) if ends else float("nan"),
        "end_p99": percentile(ends, 99),
        "sub_p99": percentile(subs, 99),
        "cpu_cores": {k: (cpu1[k] - cpu0[k]) / total_wall for k in cpu0},
        "archiver_gen_cores": cpu_gen["archiver"] / gen_wall,
        "archiver_ms_per_record": (cpu1["archiver"] - cpu0["archiver"]) / (2 * jobs) * 1000,
        "wall": total_wall,
        "gen_wall": gen_wall,
        "counts": counts,
        "stream": left,
        "batches": batches,
        "batch_mean": 2 * jobs / batches if batches else float("nan"),
        "xreadgroup": calls.get("xreadgroup", 0),
        "samples": watcher.samples,
        "read_median": median(watcher.read_seconds) if watcher.read_seconds else float("nan"),
        "read_max": max(watcher.read_seconds) if watcher.read_seconds else float("nan"),
        "window_max": max(watcher.window) if watcher.window else 0,
        "lost": jobs - min(counts["rows"], counts["submitted"], counts["finished"]),
    }
    res["ok"] = res["max"] < LAG_TARGET and res["lost"] == 0 and counts["rows"] == jobs
    log(
        f"  {LABEL[store]}: lag median {ms(res['median'])}, p99 {ms(res['p99'])}, max "
        f"{ms(res['max'])}; generated {gen['rate']:.1f} jobs/s over {gen['seconds']:.1f} s "
        f"(late by up to {ms(gen['behind'])}); archiver {res['archiver_gen_cores'] * 100:.0f} % "
        f"of a core while generating ({res['archiver_ms_per_record']:.3f} ms per record), "
        f"{batches} batches (mean {res['batch_mean']:.0f} records); store {counts}; stream "
        f"{left}; reads {res['samples']} (median {ms(res['read_median'])})"
    )
    return res


def bench_lag(args: argparse.Namespace) -> dict[str, Any]:
    return {store: lag_run(store, args) for store in ARCHIVED}


# -- 3. the archiver's CPU per record, by batch size (diagnostic) -------------------------------


def fill_stream(stack: Stack, first: int, jobs: int, output: str) -> None:
    """``jobs`` jobs' records (submission, then end) straight into the stream."""
    from netpulse.audit import stream
    from netpulse.config import get_settings

    assert stack.redis is not None
    max_len = get_settings().audit.stream_max_len
    with stack.redis.pipeline(transaction=False) as pipe:
        for i in range(first, first + jobs):
            sub, end = lag_records(i, output, time.time())
            stream.add(pipe, sub, max_len)
            stream.add(pipe, end, max_len)
        pipe.execute()


def batch_run(store: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The product's ``Archiver.step`` in this process, on a stream filled beforehand, with
    ``audit.batch_size`` set to each of ``--batch-sizes``: CPU per record of the archiver (this
    process), of redis-server and of the PostgreSQL backend. Small batches are what the
    archiver takes when records trickle in (it wakes for each XADD)."""
    from netpulse.audit import stream
    from netpulse.audit.archiver import Archiver as ProductArchiver
    from netpulse.audit.database import AuditDatabase
    from netpulse.config import get_settings

    output = "x" * args.lag_output_bytes
    sizes = [int(v) for v in args.batch_sizes.split(",")]
    jobs = args.batch_records // 2
    out: list[dict[str, Any]] = []
    pg_cm = PgDatabase("batch") if store == "postgresql" else contextlib.nullcontext()
    with pg_cm as pg:
        env = audit_env(store, pg)
        with Stack(fifo_workers=1, delivery=False, extra_env=env) as stack:
            assert stack.redis is not None
            settings = get_settings()
            db = AuditDatabase(settings)
            db.upgrade()
            stack.redis.xgroup_create(stream.STREAM, stream.GROUP, id="0", mkstream=True)
            pg_pids = pg.backend_pids() if pg is not None else []
            redis_proc = getattr(stack.redis_server, "_proc", None)
            redis_pid = redis_proc.pid if redis_proc is not None else 0
            first = 0
            # Warm-up (statements compiled, the hourly prune done), not measured.
            fill_stream(stack, first, 50, output)
            first += 50
            warm = ProductArchiver(stack.redis, db, settings, name="bench-batch")
            while warm.step():
                pass
            for size in sizes:
                fill_stream(stack, first, jobs, output)
                first += jobs
                audit = settings.audit.model_copy(update={"batch_size": size})
                archiver = ProductArchiver(
                    stack.redis,
                    db,
                    settings.model_copy(update={"audit": audit}),
                    name="bench-batch",
                )
                archiver._last_prune = time.time()  # the prune was done by the warm-up
                cpu0, wall0 = time.process_time(), time.perf_counter()
                redis0, pg0 = cpu_seconds(redis_pid), cpu_of(pg_pids)
                done = 0
                while done < 2 * jobs:
                    got = archiver.step()
                    if not got:
                        break
                    done += got
                wall = time.perf_counter() - wall0
                cpu = time.process_time() - cpu0
                row = {
                    "size": size,
                    "records": done,
                    "archiver_ms": cpu / done * 1000,
                    "redis_ms": (cpu_seconds(redis_pid) - redis0) / done * 1000,
                    "postgres_ms": (cpu_of(pg_pids) - pg0) / done * 1000,
                    "rate": done / wall,
                }
                out.append(row)
                log(
                    f"batch cost {LABEL[store]}, batch_size {size}: {done} records, archiver "
                    f"{row['archiver_ms']:.3f} ms/record, redis {row['redis_ms']:.3f}, "
                    f"postgres {row['postgres_ms']:.3f}; {row['rate']:.0f} records/s"
                )
            db.dispose()
    return out


def bench_batch(args: argparse.Namespace) -> dict[str, Any]:
    return {store: batch_run(store, args) for store in ARCHIVED}


# -- report -------------------------------------------------------------------------------------


def report(args: argparse.Namespace, res: dict[str, Any], quiet: dict[str, Any]) -> list[str]:
    rows: list[list[Any]] = []
    notes: list[str] = []
    tp = res.get("throughput")
    if tp:
        n, rounds = tp["jobs"], args.rounds
        for store in tp["others"]:
            ratio = tp["ratio"][store]
            target = store in ARCHIVED
            rows.append(
                [
                    f"Pinned throughput, audit {LABEL[store]} vs off: {args.tp_devices} fastsim "
                    f"devices x {args.tp_commands} commands ({n} jobs, /device/bulk), median "
                    f"of {rounds} runs each" + ("" if target else " (diagnostic)"),
                    f"off {tp['rates']['off']:.1f} jobs/s; {SHORT[store]} "
                    f"{tp['rates'][store]:.1f} jobs/s "
                    f"(per-round ratios "
                    f"{', '.join(f'{p:.3f}' for p in tp['paired'][store])})",
                    f"**{ratio:.3f}x**",
                    f">= {TP_TARGET}x" if target else "-",
                    verdict(ratio >= TP_TARGET) if target else "reported",
                ]
            )
        for i, run in enumerate(tp["sequence"]):
            store = run["store_kind"]
            archived = ""
            if store in ARCHIVED:
                archived = (
                    f"; every end in the store {run['archived_after_last_end']:.2f} s after the "
                    "last job's end at the latest (first look once run_jobs returned; store: "
                    f"{run['store']['rows']} rows, "
                    f"{run['store']['finished']} finished, rows == jobs: {run['counts_ok']}); "
                    f"{batch_text(run['calls'], 2 * n)}"
                )
            notes.append(
                f"- Run {i + 1} ({LABEL[store]}): **{run['rate']:.1f} jobs/s**, first submit to "
                f"last ended_at {run['elapsed']:.1f} s (submit {run['submit_seconds']:.1f} s), "
                f"{run['finished']} finished, {errors_text(run)}; CPU per job (ms): "
                f"{fmt_cpu(run['cpu_ms'])}; audit stream after it: {run['stream']['length']} "
                f"records{archived}; {describe_load(run['load'])}."
            )
        if "off" in tp["runs"]:
            off_left = median(r["stream"]["length"] for r in tp["runs"]["off"])
            notes.append(
                '- "Off" is `NETPULSE_AUDIT__MODE=none` with no archiver. In that mode the '
                f"controller still adds a submission record per job ({off_left:.0f} records in "
                f"the stream after an off run of {n} jobs, none read): "
                "`dispatch/submit.py::_audit_submission` adds it whatever the mode (docs/audit.md: "
                "`none` keeps that a job ran); only the end records are skipped. So the ratio is "
                "full mode + the archiver against submission records only: no setting turns "
                "the records off altogether."
                if off_left
                else '- "Off" is `NETPULSE_AUDIT__MODE=none` with no archiver: no records.'
            )
        parts = []
        for what in ("node", "controller", "redis", "archiver", "postgres"):
            found = [
                f"{LABEL[s]} {median(r['cpu_ms'][what] for r in tp['runs'][s]):.2f}"
                for s in tp["configs"]
                if what in tp["runs"][s][0]["cpu_ms"]
            ]
            if found:
                parts.append(f"{what}: " + ", ".join(found))
        busy = ", ".join(
            f"{LABEL[s]} {median(r['load']['busy_cores'] for r in tp['runs'][s]):.2f}"
            for s in tp["configs"]
        )
        notes.append(
            "- CPU per job, medians (ms): "
            + "; ".join(parts)
            + f". Cores busy (whole machine, of {tp['sequence'][0]['load']['cores']}), "
            f"medians: {busy}."
        )
        notes += analysis(res)
    lag = res.get("lag")
    if lag:
        for store, r in lag.items():
            rows.append(
                [
                    f"Archiver lag at {args.lag_rate:.0f} jobs/s ({LABEL[store]}): "
                    f"{r['jobs']} jobs, {2 * r['jobs']} records over "
                    f"{r['gen']['seconds']:.1f} s, {args.lag_output_bytes} B output each",
                    f"median {ms(r['median'])}, p99 {ms(r['p99'])}; archiver "
                    f"{r['archiver_gen_cores'] * 100:.0f} % of a core; rows == jobs: "
                    f"{r['counts']['rows'] == r['jobs']}, lost {r['lost']}",
                    f"max **{ms(r['max'])}**",
                    f"< {LAG_TARGET:.0f} s, none lost",
                    verdict(r["ok"]),
                ]
            )
            cores = r["cpu_cores"]
            notes.append(
                f"- Lag {LABEL[store]}: generated {r['gen']['rate']:.1f} jobs/s (a tick late by "
                f"up to {ms(r['gen']['behind'])}); submissions p99 {ms(r['sub_p99'])}, ends "
                f"median {ms(r['end_median'])} / p99 {ms(r['end_p99'])}; seen "
                f"{r['seen_subs']} submissions and {r['seen_ends']} ends of {r['jobs']}; store "
                f"{r['counts']}; stream after it {r['stream']}. CPU over the {r['wall']:.1f} s "
                f"(generation and drain), cores: archiver {cores['archiver']:.2f} "
                f"({r['archiver_ms_per_record']:.3f} ms per record), redis "
                f"{cores['redis']:.2f}, PostgreSQL backend {cores['postgres']:.2f}, this "
                f"process (generator and reader) {cores['bench']:.2f}. Batches: "
                f"{r['batches']} (XACK calls), mean {r['batch_mean']:.0f} records; "
                f"{r['xreadgroup']} XREADGROUP. Store reads: {r['samples']}, median "
                f"{ms(r['read_median'])}, max {ms(r['read_max'])}, at most {r['window_max']} "
                "rows each."
            )
    if lag:
        notes.append(
            f"- Lag method: a record counts as archived at the start of the first store read "
            f"that shows it (reads every {args.sample_ms:.0f} ms), so each lag is an upper "
            f"bound, late by up to {args.sample_ms:.0f} ms (half of it on average) against the "
            "commit; the XADD time is the millisecond in the record's stream id."
        )
    tables = [table(["Figure", "Measured", "Result", "Target", "Verdict"], rows)]
    batch = res.get("batch")
    if batch:
        sizes = [r["size"] for r in next(iter(batch.values()))]
        brows: list[list[Any]] = []
        for store, found in batch.items():
            brows.append([f"{LABEL[store]}: archiver"] + [f"{r['archiver_ms']:.3f}" for r in found])
            brows.append(
                [f"{LABEL[store]}: redis-server"] + [f"{r['redis_ms']:.3f}" for r in found]
            )
            if store == "postgresql":
                brows.append(
                    [f"{LABEL[store]}: PostgreSQL backend"]
                    + [f"{r['postgres_ms']:.3f}" for r in found]
                )
            brows.append(
                [f"{LABEL[store]}: records/s (one archiver)"] + [f"{r['rate']:.0f}" for r in found]
            )
        tables.append(
            f"Diagnostic: CPU per audit record (ms) by batch size. The product's `Archiver.step` "
            f"run in the benchmark process on a stream filled beforehand with "
            f"{args.batch_records} records ({args.lag_output_bytes} B output per end), "
            "`audit.batch_size` set to each size; CPU of this process, of redis-server and of "
            "the PostgreSQL backend over the drain.\n\n"
            + table(["", *[f"batch {size}" for size in sizes]], brows)
        )
    locked = launched_with_lock()
    if locked:
        notes.append(
            f"- Run as `{locked}` (the machine's benchmark lock held throughout: no other "
            "benchmark ran meanwhile; CI and editors may have)."
        )
    notes.append(
        f"- Load: 1-minute load average {quiet['first']} before, waited {quiet['waited']:.0f} s "
        f"(bench.common.wait_for_quiet), {quiet['start']} at the start of the measurements."
        + (
            ""
            if locked
            else " Run under the machine's benchmark lock (`flock /tmp/netpulse-bench.lock`), "
            "so no other benchmark ran meanwhile; CI and editors may have."
        )
    )
    notes.append(
        "- Setup: a fresh bench.common.Stack per run (private redis-server, controller, FIFO pool "
        f"of {SMALL_POOL}, no webhook delivery service), `netpulse worker node --threads "
        f"{args.tp_threads}` started cold per run, `netpulse worker audit --name "
        f"{ARCHIVER_NAME}` as the stack's child for the on runs (batch_size 500, the default), "
        "a PostgreSQL database created for the run and dropped after it. fastsim devices in "
        "their own process. The lag runs' stack has no node (1 FIFO worker, idle); the records "
        "come from this process."
    )
    notes.append(
        f"- Product: commit {git_head()} of /work/main, netpulse/ as of commit "
        f"{product_commit()} (other engineers' uncommitted edits elsewhere in the tree may be "
        "present)."
    )
    return [*tables, "\n".join(notes)]


#: The first full run of this command, on commit 97adf05 (before the archiver gathered
#: records), and a py-spy profile of that archiver: kept because they explain commit 818d92d.
EARLIER_NOTE = (
    "- Earlier, on commit 97adf05, before 818d92d (the archiver then wrote whatever one read "
    "gave it and sent XREADGROUP 0, XAUTOCLAIM and XLEN around every batch), the same command at "
    "11:49-11:59: off 130.6 jobs/s; on, SQLite 119.2 (**0.913x, MISS**); on, PostgreSQL "
    "113.2 (**0.867x, MISS**); records only 124.6 (0.954x); archiver 2.34 / 2.55 ms CPU per "
    "job in batches of 1.3 / 1.6 records (0.28-0.29 of a core; machine 1.49 / 1.59 cores busy "
    "vs 1.25 off); lag at 500 jobs/s median 60 / 55 ms, max 120 / 155 ms, in batches of 5. A "
    "py-spy profile (0.4.3, 100 Hz, a separate throughput run) of that archiver: about 47 % of "
    "its samples in Redis round trips (5 per batch whatever its size), 24 % in `_upsert`, of "
    "which 11 % rebuilding the statement's `excluded` column collection for every batch, "
    "`rows.collect` 6 %; in the node, the end record (`finished_audit_record` + its XADD in "
    "`publish_job_end`'s pipeline) under 1 % of the samples; in the controller, "
    "`_audit_submission` 7-8 % of a bulk submission (its own XADD round trip per job, "
    "outside the enqueue pipeline; the same in mode none)."
)


def product_commit() -> str:
    """The last commit that changed netpulse/ (the product code the figures measure)."""
    from bench.common import git_output

    return git_output("log", "-1", "--format=%h", "--", "netpulse")


def product_line(needle: str, path: str = "netpulse/audit/archiver.py") -> str:
    """``path:line`` of the first line holding ``needle`` (for the notes; ``path`` alone if
    the code changed)."""
    from bench.common import ROOT

    try:
        for number, line in enumerate((ROOT / path).read_text().splitlines(), 1):
            if needle in line:
                return f"{path}:{number}"
    except OSError:
        pass
    return path


def launched_with_lock() -> str:
    """The command as run, with the ``flock`` that held the benchmark lock if any."""
    try:
        parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    argv = [a.decode(errors="replace") for a in parent if a]
    if not argv or Path(argv[0]).name != "flock":
        return ""
    at = next((i for i, a in enumerate(argv) if Path(a).name.startswith("python")), None)
    if at is None:
        return ""
    return f"cd /work/main && {' '.join(argv[:at])} {command_line().split(' && ', 1)[1]}"


def analysis(res: dict[str, Any]) -> list[str]:
    """Why the throughput ratio is what it is, from this run's figures."""
    tp = res.get("throughput")
    if not tp:
        return []
    n, rates = tp["jobs"], tp["rates"]
    parts = []
    for store in (s for s in ARCHIVED if s in tp["runs"]):
        runs = tp["runs"][store]
        per_job = median(r["cpu_ms"]["archiver"] for r in runs)
        batch = median(2 * n / max(r["calls"]["xack"], 1) for r in runs)
        cores = per_job * rates[store] / 1000
        extra = ""
        if store == "postgresql":
            pg_ms = median(r["cpu_ms"].get("postgres", 0.0) for r in runs)
            extra = f" plus its PostgreSQL backend {pg_ms:.2f} ms"
        parts.append(
            f"{LABEL[store]}: {per_job:.2f} ms of archiver CPU per job{extra}, in batches of "
            f"{batch:.1f} records (median), i.e. {cores:.2f} of a core at {rates[store]:.0f} "
            "jobs/s"
        )
    off = [r["rate"] for r in tp["runs"]["off"]]
    busy = {s: median(r["load"]["busy_cores"] for r in tp["runs"][s]) for s in tp["configs"]}
    total = {s: median(r["netpulse_ms_per_job"] for r in tp["runs"][s]) for s in tp["configs"]}
    spread = (max(off) / min(off) - 1) * 100
    node = {s: median(r["cpu_ms"]["node"] for r in tp["runs"][s]) for s in tp["configs"]}
    on_node = max(node[s] for s in ARCHIVED if s in node)
    missed = [s for s in ARCHIVED if s in tp["ratio"] and tp["ratio"][s] < TP_TARGET]
    if not missed:
        node_text = (
            f"The node's own CPU per job: {node['off']:.2f} ms off, at most {on_node:.2f} ms on."
        )
    elif on_node <= node["off"] * 1.1:
        node_text = (
            f"The node's own CPU per job hardly changes with the trail on ({node['off']:.2f} ms "
            f"off, at most {on_node:.2f} on), so its lower rate is time spent waiting, not "
            "working: for a core, and for a redis-server the archiver keeps busy too."
        )
    else:
        node_text = (
            f"The node's own CPU per job grew from {node['off']:.2f} ms (off) to up to "
            f"{on_node:.2f} ms (on): the record it adds, and CPU time slowed by contention."
        )
    text = (
        f"- Noise: the off runs alone spread from {min(off):.1f} to {max(off):.1f} jobs/s "
        f"({spread:.0f} %)"
        + (
            ", more than the 3 % the target allows, so one ratio alone is only indicative; the "
            "verdicts rest on the medians of the interleaved runs, and the CPU figures say why."
            if spread > 3
            else "."
        )
    )
    from netpulse.audit import archiver as product

    gather = getattr(product, "GATHER_SECONDS", 0.0)
    batches = {
        s: median(2 * n / max(r["calls"]["xack"], 1) for r in tp["runs"][s])
        for s in ARCHIVED
        if s in tp["runs"]
    }
    small = min(batches.values(), default=0.0) < 5
    text += (
        "\n- "
        + ("Where the throughput goes" if missed else "CPU with the trail on")
        + ": the pinned rate is bound by the one node process (its "
        "GIL; see the Warm sessions section) on a 2-core machine already "
        f"{busy['off']:.2f} cores busy with the node, the controller, redis-server and the "
        "simulator when the trail is off. The archiver runs beside them: "
        + "; ".join(parts)
        + ". NetPulse's processes (Redis included, PostgreSQL not) used "
        + ", ".join(f"{LABEL[s]} {total[s]:.1f}" for s in tp["configs"])
        + " ms of CPU per job (medians, the run's window), and the machine was "
        + ", ".join(f"{LABEL[s]} {busy[s]:.2f}" for s in tp["configs"])
        + " cores busy. "
        + node_text
    )
    if small:
        text += (
            " The archiver wakes for every XADD (the records trickle in, one per "
            "submission and one per end), so nearly every batch holds one or two records and "
            "pays the whole per-batch cost (Redis round trips and one transaction)."
        )
    elif gather:
        text += (
            f" The archiver gathers new records for {gather:g} s after the first of a batch "
            f"(`GATHER_SECONDS`, {product_line('time.sleep(self.gather)')}), so its per-batch "
            "cost (Redis round trips, one transaction) is spread over that many records."
        )
    if "stream" in rates:
        ratio = tp["ratio"]["stream"]
        spread = tp["paired"]["stream"]
        text += (
            f" With full records and no archiver (the diagnostic runs) the rate was "
            f"{ratio:.3f}x off's ({rates['stream']:.1f} vs {rates['off']:.1f} jobs/s; per "
            f"round {min(spread):.2f} to {max(spread):.2f}) and the machine "
            f"{busy['stream']:.2f} cores busy: "
            + (
                "the records themselves (bigger submission records, the end record in the "
                "node's publish pipeline) cost little"
                + ("; the loss comes with the archiver's CPU." if missed else ".")
                if ratio >= TP_TARGET
                else "the records themselves may cost part of it, within the noise."
            )
        )
    batch = res.get("batch")
    if batch:
        costs = []
        for store, found in batch.items():
            first, last = found[0], found[-1]
            costs.append(
                f"{LABEL[store]} {first['archiver_ms']:.2f} ms at batch {first['size']} vs "
                f"{last['archiver_ms']:.3f} ms at batch {last['size']}"
            )
        text += (
            " The batch table shows what a batch costs whatever its size: archiver CPU per "
            "record " + "; ".join(costs) + "."
        )
    if small:
        text += (
            " Suggested product fixes (not made here): gather new records for a short while "
            "before writing (a batch of tens of records), read this consumer's pending "
            "records and run XAUTOCLAIM only at start, after a failed batch and now and then, "
            "send XLEN every few seconds rather than every batch, and build `_upsert`'s "
            f"statements once ({product_line('statement.excluded')})."
        )
    else:
        text += (
            " Left in the product (not changed here): `step` still reads this consumer's "
            f"pending records (XREADGROUP 0, {product_line('entries = self._pending()')}) "
            "before every batch, a round trip that only matters after a failure; the gather's "
            f"second read ({product_line('entries += self._new(0)')}) asks for a whole "
            "`batch_size` again, so a batch can hold up to twice `audit.batch_size` (the "
            "`count` parameter `_read` gained is never passed); `_upsert` builds its statement "
            "and its `excluded` column collection again for every batch "
            f"({product_line('statement.excluded')}); and the gather adds up to "
            f"{gather:g} s to each record's lag (see the lag rows), well under the 1 s target."
        )
    return [*text.split("\n"), EARLIER_NOTE]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="throughput,lag,batch")
    parser.add_argument("--rounds", type=int, default=4, help="throughput rounds, ABC CBA ...")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="throughput runs")
    parser.add_argument("--tp-devices", type=int, default=100)
    parser.add_argument("--tp-commands", type=int, default=20)
    parser.add_argument("--tp-threads", type=int, default=16)
    parser.add_argument("--lag-rate", type=float, default=500)
    parser.add_argument("--lag-seconds", type=float, default=20)
    parser.add_argument("--lag-output-bytes", type=int, default=1024)
    parser.add_argument("--sample-ms", type=float, default=100)
    parser.add_argument("--batch-sizes", default="1,2,5,20,100,500")
    parser.add_argument("--batch-records", type=int, default=2000)
    parser.add_argument("--max-wait", type=float, default=600, help="for the load to settle")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if "throughput" in parts and "off" not in args.configs.split(","):
        parser.error("--configs must include off (the ratios are against it)")
    t0 = time.monotonic()
    quiet = wait_for_quiet(max_wait=args.max_wait)
    res: dict[str, Any] = {}
    if "throughput" in parts:
        res["throughput"] = bench_throughput(args)
    if "lag" in parts:
        res["lag"] = bench_lag(args)
    if "batch" in parts:
        res["batch"] = bench_batch(args)
    parts_text = report(args, res, quiet)
    print()
    print("\n\n".join(parts_text))
    if not args.no_write:
        write_section(SECTION, TITLE, time.monotonic() - t0, *parts_text)
    log(f"done in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
