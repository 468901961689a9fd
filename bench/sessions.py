"""Warm-session benchmarks (issue 4): worker nodes holding SSH sessions for pinned jobs.

    cd /work/main && .venv/bin/python bench/sessions.py
        [--parts latency,keepalive,scale,throughput] [--runs 20]
        [--scale-devices 500] [--scale-threads 32] [--scale-capacity 600]
        [--tp-devices 100] [--tp-commands 20] [--tp-threads 16] [--tp-nodes N]
        [--fifo-workers 16]
        [--tp-repeats 2] [--no-write]
    cd /work/main && .venv/bin/python bench/sessions.py --parts nodes [--nodes 1,2]
        [--nodes-rounds 3] [--no-nodes-control] [--no-nodes-drain] [--no-nodes-profile]
        [--profile-rate 100]

1. latency: a warm-session command. NetPulse: ``POST /device/exec`` + ``GET /jobs/{id}?wait=30``
   (pinned, the default for netmiko; the node's session is already warm, checked on every job
   through ``session_reused``) vs. the same command with ``send_command`` on a netmiko
   connection already open in this process. Interleaved (A, B, A, B...) after warm-up; median of
   ``--runs`` each. On FakeNOS cisco_ios (``show clock``; target: ratio <= 1.15) and on the
   fastsim simulator (``show clock``; target: API median - direct median <= 15 ms).
2. keepalive: a warm fastsim session must outlive the node's keepalive probe (probe every 1 s
   here; before commit e03e2b2 the probe's ``send_ignore()`` made asyncssh drop the session).
3. scale: one node (``--threads 32 --capacity 600``) warms ``--scale-devices`` fastsim
   sessions, then runs one command on each device; its RSS (VmRSS of the node process plus
   any children) must stay under 1.5 GiB and the round must take under 20 s from the first
   submit to the last job's ``ended_at``, every job on a warm session.
4. throughput: ``--tp-devices`` fastsim devices x ``--tp-commands`` commands, submitted with
   ``POST /device/bulk`` (one bulk per command round); pinned vs FIFO in the same run and
   stack, ``--tp-repeats`` runs each in ABBA order; target pinned >= 5x FIFO. Pinned runs on
   ``--tp-nodes`` node processes (default 1) sharing ``--tp-threads`` job threads, as many as
   the FIFO pool's ``--fifo-workers``. Each pinned run starts cold (new nodes).

5. nodes (``--parts nodes``, its own section "Worker nodes per host"): the throughput part's
   pinned workload (``--tp-devices`` x ``--tp-commands``, fastsim) with ``--nodes`` worker
   node processes on this host (default 1 and 2; distinct names, ``--tp-threads`` each; the
   scheduler, ``least_load``, spreads the devices), plus a control of one node with as many
   threads as the 2 nodes together; interleaved over ``--nodes-rounds`` rounds (order rotated),
   each run cold (new nodes); jobs/s per configuration (median) and the ratio to one node.
   Each configuration is timed two ways (``--nodes-drain``): *end to end*, from the first
   submission to the last ``ended_at``, the controller and this client sharing the 2 cores
   with the nodes; and as a *queue drain*: the nodes are held with SIGSTOP while the 2,000
   jobs are submitted and placed, released with SIGCONT, and timed from the release to the
   last ``ended_at`` (what the nodes of one host get through; a NetPulse host runs nodes, not
   the controller or the client; the simulated devices still share its cores). Target: 2
   nodes >= 1.7x one node, as a queue drain. Then one more run (not counted) under
   ``py-spy record --gil`` on the nodes, the controller and the simulator (``--nodes-profile``).

Each part gets a fresh stack (bench.common.Stack). Every device (FakeNOS, fastsim) runs in its
own child process; everything listens on 127.0.0.0/8. Results go to bench/RESULTS.md, section
"Warm sessions (issue 4)" for a full run of parts 1-4, "Warm sessions (issue 4): <parts>" for
some of them (never replacing the full run's figures), "Worker nodes per host" for part 5.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.common as common
from bench.common import (
    Fleet,
    Stack,
    conn_args,
    cpu_seconds,
    log,
    median,
    parse_ts,
    percentile,
    section_header,
    table,
    update_results,
    wait_for_quiet,
)
from bench.sessions_support import (
    FastFleet,
    JobEnds,
    LoadMeter,
    Node,
    describe_load,
    memory,
    open_tcp_connections,
    read_jobs,
)

SECTION = "Warm sessions (issue 4)"
NODES_SECTION = "Worker nodes per host"
#: The parts of a full run (written to SECTION); ``nodes`` writes its own section.
DEFAULT_PARTS = "latency,keepalive,scale,throughput"
COMMAND = "show clock"  # answers in user and enable mode on FakeNOS cisco_ios: no enable step
GIB = 1024.0
SMALL_POOL = 2  # FIFO workers of the stacks that run no FIFO jobs


def exec_body(dev: dict[str, Any], command: str = COMMAND, **extra: Any) -> dict[str, Any]:
    return {"driver": "netmiko", "connection_args": conn_args(dev), "command": command, **extra}


def reused(job: dict[str, Any]) -> bool:
    return bool(job["result"]["retval"][0]["metadata"]["session_reused"])


def git_head() -> str:
    return common.git_head()


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


# -- 1. latency -------------------------------------------------------------------------------


def api_once(stack: Stack, dev: dict[str, Any]) -> dict[str, Any]:
    assert stack.api is not None
    created = stack.submit(exec_body(dev))
    reply = stack.api.get(f"/jobs/{created['id']}", params={"wait": 30})
    reply.raise_for_status()
    job = reply.json()
    if job["status"] != "finished":
        raise RuntimeError(f"job {job['id']} ended {job['status']}: {job.get('result')}")
    return job


def redis_calls(stack: Stack) -> int:
    """Commands Redis has executed so far (INFO commandstats)."""
    assert stack.redis is not None
    return sum(v["calls"] for v in stack.redis.info("commandstats").values())


def process_cpu(stack: Stack, node: Node) -> dict[str, float]:
    """CPU seconds used so far by the controller, the node and redis-server."""
    assert stack.controller is not None
    redis_proc = getattr(stack.redis_server, "_proc", None)
    return {
        "controller": cpu_seconds(stack.controller.pid),
        "node": cpu_seconds(node.pid),
        "redis": cpu_seconds(redis_proc.pid) if redis_proc is not None else float("nan"),
    }


def bench_latency(
    stack: Stack, node: Node, dev: dict[str, Any], runs: int, label: str
) -> dict[str, Any]:
    """Interleaved warm API jobs and direct send_command on an open connection."""
    from netmiko import ConnectHandler

    log(f"latency on {label} {dev['name']}: warm-up, then {runs} interleaved pairs")
    conn = ConnectHandler(**conn_args(dev), conn_timeout=10, auth_timeout=10)
    meter = LoadMeter()
    try:
        conn.send_command(COMMAND)
        first = api_once(stack, dev)  # opens the node's session
        if not first["queue"].startswith("NodeQ_"):
            raise RuntimeError(f"the job was not pinned: queue {first['queue']}")
        api_once(stack, dev)
        direct: list[float] = []
        api: list[float] = []
        phases: dict[str, list[float]] = {
            "submit": [],  # client sends POST -> job enqueued (controller, place_device, RQ)
            "queue": [],  # enqueued_at -> started_at (node thread picks it up, RQ prepare)
            "job_minus_send": [],  # started_at -> ended_at minus send_command itself
            "send": [],  # send_command inside the job
            "end_to_client": [],  # ended_at -> the client has the GET ?wait answer
        }
        calls0, cpu0 = redis_calls(stack), process_cpu(stack, node)
        for _ in range(runs):
            started = time.perf_counter()
            out = conn.send_command(COMMAND)
            direct.append(time.perf_counter() - started)
            if "UTC" not in out:
                raise RuntimeError(f"unexpected direct output {out!r}")
            wall0, started = time.time(), time.perf_counter()
            job = api_once(stack, dev)
            api.append(time.perf_counter() - started)
            wall1 = time.time()
            if not reused(job):
                raise RuntimeError(f"job {job['id']} did not reuse the warm session")
            if "UTC" not in job["result"]["retval"][0]["stdout"]:
                raise RuntimeError(f"unexpected job output {job['result']}")
            send = job["result"]["retval"][0]["metadata"]["duration_seconds"]
            phases["submit"].append(parse_ts(job["enqueued_at"]) - wall0)
            phases["queue"].append(job["queue_time"])
            phases["job_minus_send"].append(job["duration"] - send)
            phases["send"].append(send)
            phases["end_to_client"].append(wall1 - parse_ts(job["ended_at"]))
        calls = (redis_calls(stack) - calls0) / runs
        cpu1 = process_cpu(stack, node)
        cpu_ms = {k: (cpu1[k] - cpu0[k]) / runs * 1000 for k in cpu0}
    finally:
        conn.disconnect()
    load = meter.stop()
    res = {
        "label": label,
        "direct": median(direct),
        "api": median(api),
        "ratio": median(api) / median(direct),
        "overhead": median(api) - median(direct),
        "direct_range": (min(direct), max(direct)),
        "api_range": (min(api), max(api)),
        "api_p90": percentile(api, 90),
        "phases": {k: median(v) for k, v in phases.items()},
        "load": load,
        "redis_calls": calls,
        "cpu_ms": cpu_ms,
    }
    ph = res["phases"]
    log(
        f"  {label}: direct {ms(res['direct'])}, API {ms(res['api'])} (ratio {res['ratio']:.3f}, "
        f"+{ms(res['overhead'])}); phases: submit {ms(ph['submit'])}, queue {ms(ph['queue'])}, "
        f"send_command {ms(ph['send'])}, rest of job {ms(ph['job_minus_send'])}, end to client "
        f"{ms(ph['end_to_client'])}; per API job: {calls:.0f} Redis commands, CPU controller "
        f"{cpu_ms['controller']:.1f} ms, node {cpu_ms['node']:.1f} ms, redis "
        f"{cpu_ms['redis']:.1f} ms; {describe_load(load)}"
    )
    return res


def bench_keepalive(stack: Stack) -> dict[str, Any]:
    """Does a warm session outlive the node's keepalive probe? (probe every 1 s here)."""
    env = {"NETPULSE_NODE__PROBE_INTERVAL": "1"}
    with FastFleet(1) as fleet, Node(stack, "bench-ka", 2, 10, env=env) as node:
        dev = fleet.devices[0]
        api_once(stack, dev)
        before = reused(api_once(stack, dev))
        time.sleep(3.5)  # three probes
        after = reused(api_once(stack, dev))
        node.stop()
        assert node.log_path is not None
        text = node.log_path.read_text(errors="replace")
    res = {
        "reused_before_probe": before,
        "reused_after_probe": after,
        "incomplete_packet": text.count("Incomplete packet"),
        "died_dropped": text.count("died; dropped") + text.count("found dead"),
    }
    log(
        f"keepalive: reused before probes {before}, after {after}; node log: "
        f"{res['incomplete_packet']} 'Incomplete packet' disconnects, {res['died_dropped']} "
        "sessions found dead"
    )
    return res


# -- many jobs --------------------------------------------------------------------------------


def bulk_round(
    stack: Stack, devices: list[dict[str, Any]], command: str, strategy: str, chunk: int = 100
) -> list[str]:
    """One command on every device via POST /device/bulk (in chunks); return the job ids."""
    assert stack.api is not None
    ids: list[str] = []
    shared = {k: devices[0][k] for k in ("device_type", "username", "password")}
    for start in range(0, len(devices), chunk):
        part = devices[start : start + chunk]
        body = {
            "driver": "netmiko",
            "queue_strategy": strategy,
            "connection_args": shared,
            "command": command,
            "devices": [{"host": d["host"], "port": d["port"]} for d in part],
        }
        reply = stack.api.post("/device/bulk", json=body)
        if reply.status_code != 201:
            raise RuntimeError(f"bulk submit failed: {reply.status_code} {reply.text[:500]}")
        data = reply.json()
        if data["failed"]:
            raise RuntimeError(f"bulk refused {len(data['failed'])}: {data['failed'][:3]}")
        ids += [j["id"] for j in data["succeeded"]]
    return ids


def run_jobs(
    stack: Stack,
    devices: list[dict[str, Any]],
    commands: list[str],
    strategy: str,
    timeout: float,
    freeze: list[int] | None = None,
    at_release: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Submit one bulk round per command; wait for every job; timings from the jobs' own
    timestamps (first submit -> last ``ended_at``). Failed jobs are counted, not raised.

    ``freeze``: pids (the worker nodes) held with SIGSTOP while the jobs are submitted and
    released with SIGCONT once all are queued; the run is then timed from the release (the
    nodes' own capacity, the controller and this client idle meanwhile). ``at_release`` is
    called right after the release (e.g. a CPU snapshot); its value is ``run["at_release"]``.
    """
    assert stack.redis is not None
    ends = JobEnds(stack.redis)
    meter: LoadMeter | None = None if freeze else LoadMeter()
    released_value: Any = None
    released = 0.0
    try:
        for pid in freeze or ():
            os.kill(pid, signal.SIGSTOP)
        try:
            t0 = time.time()
            ids: list[str] = []
            for command in commands:
                ids += bulk_round(stack, devices, command, strategy)
            submitted = time.time()
        finally:
            for pid in freeze or ():
                os.kill(pid, signal.SIGCONT)
            released = time.time()
        if freeze:
            meter = LoadMeter()
            released_value = at_release() if at_release is not None else None
        seen_last = ends.wait_for(ids, timeout)
    finally:
        ends.close()
    assert meter is not None
    load = meter.stop()
    jobs = read_jobs(stack.redis, ids)
    ok = [j for j in jobs if j["status"] == "finished"]
    failed = [j for j in jobs if j["status"] != "finished"]
    if not ok:
        raise RuntimeError(f"no job finished: {failed[0]}")
    errors: dict[str, int] = {}
    for j in failed:
        err = (j.get("result") or {}).get("error") or {}
        msg = str(err.get("message", j["status"]))
        kind = "prompt pattern not found" if "Pattern not detected" in msg else msg[:120]
        key = f"{err.get('type', j['status'])}: {kind}"
        errors[key] = errors.get(key, 0) + 1
    ends_at = [parse_ts(j["ended_at"]) for j in jobs if j.get("ended_at")]
    last_end = max(ends_at)
    first_start = min(parse_ts(j["started_at"]) for j in jobs if j.get("started_at"))
    elapsed = last_end - (released if freeze else t0)
    return {
        "frozen": bool(freeze),
        "at_release": released_value,
        "jobs": len(jobs),
        "finished": len(ok),
        "failed": len(failed),
        "failed_ids": [j["id"] for j in failed],
        "errors": errors,
        "elapsed": elapsed,
        "submit_seconds": submitted - t0,
        "client_seen": seen_last - t0,
        "first_start": first_start - t0,
        "rate": len(ok) / elapsed,
        "reused": sum(1 for j in ok if reused(j)),
        "duration_median": median(j["duration"] for j in ok),
        "duration_p95": percentile([j["duration"] for j in ok], 95),
        "queues": sorted({j["queue"] for j in jobs}),
        "per_queue": {q: sum(1 for j in ok if j["queue"] == q) for q in {j["queue"] for j in ok}},
        "load": load,
        # CPU per finished job: NetPulse's processes only, and the simulated devices.
        "netpulse_ms_per_job": load["netpulse_cpu"] / max(len(ok), 1) * 1000,
        "sim_ms_per_job": load["sim_cpu"] / max(len(ok), 1) * 1000,
    }


def failed_devices(stack: Stack, run: dict[str, Any], devices: list[dict[str, Any]]):
    """The devices whose job in ``run`` failed (by the job's stored request)."""
    from rq.job import Job

    assert stack.redis is not None
    wanted = set(run["failed_ids"])
    ports = set()
    for job in Job.fetch_many(list(wanted), connection=stack.redis):
        if job is not None:
            ports.add(job.kwargs["req"].connection_args.port)
    return [d for d in devices if d["port"] in ports]


# -- 2. scale ---------------------------------------------------------------------------------


def bench_scale(stack: Stack, count: int, threads: int, capacity: int) -> dict[str, Any]:
    with FastFleet(count) as fleet, Node(stack, "bench-scale", threads, capacity) as node:
        idle = memory(node.pid)
        log(f"scale: node idle RSS {idle['rss_mib']:.0f} MiB; warming {count} sessions")
        cpu0 = cpu_seconds(node.pid)
        warm = run_jobs(stack, fleet.devices, [COMMAND], "pinned", timeout=240)
        warm_load = warm["load"]
        warm_cpu = cpu_seconds(node.pid) - cpu0
        if warm["reused"]:
            raise RuntimeError(f"{warm['reused']} warm-up jobs reused a session: not cold")
        log(
            f"  warm-up: {warm['finished']} sessions opened, {warm['failed']} failed "
            f"{warm['errors']}, in {warm['elapsed']:.1f} s (node CPU {warm_cpu:.1f} s; "
            f"{describe_load(warm_load)})"
        )
        # A failed job discards its session; open those again (counted, reported).
        retries: list[dict[str, Any]] = []
        missing = failed_devices(stack, warm, fleet.devices) if warm["failed"] else []
        while missing and len(retries) < 3:
            again = run_jobs(stack, missing, [COMMAND], "pinned", timeout=120)
            retries.append(again)
            log(f"  warm-up retry of {len(missing)}: {again['failed']} failed {again['errors']}")
            missing = failed_devices(stack, again, missing) if again["failed"] else []
        if missing:
            raise RuntimeError(f"{len(missing)} sessions could not be opened")
        after_warm = memory(node.pid)
        sockets = open_tcp_connections(node.pid)
        # CPU the node spends holding idle sessions (no jobs), over a few seconds.
        time.sleep(1)
        idle_window = 5.0
        c0, w0 = cpu_seconds(node.pid), time.monotonic()
        time.sleep(idle_window)
        idle_cpu = (cpu_seconds(node.pid) - c0) / (time.monotonic() - w0)
        log(
            f"  warm: RSS {after_warm['rss_mib']:.0f} MiB, {after_warm['threads']} threads, "
            f"{sockets} sockets; idle CPU {idle_cpu * 100:.0f} % of a core"
        )
        cpu0 = cpu_seconds(node.pid)
        served = run_jobs(stack, fleet.devices, [COMMAND], "pinned", timeout=120)
        served_load = served["load"]
        served_cpu = cpu_seconds(node.pid) - cpu0
        after = memory(node.pid)
        log(
            f"  served: {served['finished']}/{served['jobs']} jobs in {served['elapsed']:.2f} s "
            f"({served['reused']} on warm sessions; failed {served['errors']}), node CPU "
            f"{served_cpu:.1f} s; RSS {after['rss_mib']:.0f} MiB (peak {after['hwm_mib']:.0f}); "
            f"{describe_load(served_load)}"
        )
        stop_seconds = node.stop()
        log(f"  node stopped in {stop_seconds:.1f} s")
    return {
        "count": count,
        "threads": threads,
        "capacity": capacity,
        "idle": idle,
        "after_warm": after_warm,
        "after": after,
        "sockets": sockets,
        "idle_cpu": idle_cpu,
        "warm": warm,
        "warm_load": warm_load,
        "retries": retries,
        "warm_cpu": warm_cpu,
        "served": served,
        "served_load": served_load,
        "served_cpu": served_cpu,
        "stop_seconds": stop_seconds,
    }


# -- 3. throughput ----------------------------------------------------------------------------


def bench_throughput(
    stack: Stack,
    devices_n: int,
    commands_n: int,
    threads: int,
    fifo_workers: int,
    repeats: int,
    nodes_n: int = 1,
) -> dict[str, Any]:
    """Pinned vs FIFO, ``repeats`` times each in ABBA order (P F F P ...): the machine is
    shared, and the order cancels a load that drifts. Each pinned run starts cold (new nodes).
    Pinned runs on ``nodes_n`` node processes sharing ``threads`` job threads (as many job
    threads in all as the FIFO pool has workers)."""
    commands = [f"echo round-{i:02d}" for i in range(commands_n)]
    capacity = max(devices_n, 100) + 50
    n = devices_n * commands_n
    runs: dict[str, list[dict[str, Any]]] = {"pinned": [], "fifo": []}
    order = []
    for r in range(repeats):
        order += ["pinned", "fifo"] if r % 2 == 0 else ["fifo", "pinned"]
    with FastFleet(devices_n) as fleet:
        for i, kind in enumerate(order):
            if kind == "pinned":
                log(
                    f"throughput {i + 1}/{len(order)}: {n} pinned jobs on {nodes_n} node(s), "
                    "cold sessions"
                )
                with contextlib.ExitStack() as started:
                    nodes = [
                        started.enter_context(
                            Node(stack, f"bench-tp-{i}-{j}", threads // nodes_n, capacity)
                        )
                        for j in range(nodes_n)
                    ]
                    cpu0 = sum(cpu_seconds(x.pid) for x in nodes)
                    run = run_jobs(stack, fleet.devices, commands, "pinned", timeout=300)
                    cpu1 = sum(cpu_seconds(x.pid) for x in nodes)
                    run["node_ms_per_job"] = (cpu1 - cpu0) / n * 1000
            else:
                log(f"throughput {i + 1}/{len(order)}: {n} FIFO jobs, connect per job")
                run = run_jobs(stack, fleet.devices, commands, "fifo", timeout=420)
            runs[kind].append(run)
            log(
                f"  {kind}: {run['elapsed']:.1f} s, {run['rate']:.1f} jobs/s (submit "
                f"{run['submit_seconds']:.1f} s, {run['reused']} reused, failed {run['errors']}); "
                f"NetPulse CPU {run['netpulse_ms_per_job']:.1f} ms/job, simulator "
                f"{run['sim_ms_per_job']:.1f} ms/job; {describe_load(run['load'])}"
            )
    pinned_rate = median(r["rate"] for r in runs["pinned"])
    fifo_rate = median(r["rate"] for r in runs["fifo"])
    return {
        "devices": devices_n,
        "commands": commands_n,
        "threads": threads,
        "nodes": nodes_n,
        "fifo_workers": fifo_workers,
        "order": order,
        "runs": runs,
        "pinned_rate": pinned_rate,
        "fifo_rate": fifo_rate,
        "speedup": pinned_rate / fifo_rate,
        "cpu_ratio": median(r["netpulse_ms_per_job"] for r in runs["fifo"])
        / median(r["netpulse_ms_per_job"] for r in runs["pinned"]),
    }


# -- 4. nodes per host -------------------------------------------------------------------------


def node_configs(counts: list[int], threads: int, control: bool) -> list[tuple[int, int]]:
    """(nodes, threads per node) of the nodes part: each count with ``threads`` per node, and
    as a control one node with as many threads as the largest count's nodes have together."""
    configs = [(k, threads) for k in counts]
    if control and max(counts) > 1:
        configs.append((1, threads * max(counts)))
    return configs


def config_name(config: tuple[int, int]) -> str:
    nodes, threads = config
    return f"{nodes} node{'s' if nodes > 1 else ''} x {threads} threads"


def fifo_pool_cpu(stack: Stack) -> float:
    """CPU seconds used so far by the FIFO workers (not the nodes' job threads, which RQ
    lists as workers too, with the node's pid)."""
    from rq import Worker

    return sum(
        cpu_seconds(w.pid, children=True)
        for w in Worker.all(connection=stack.redis)
        if not any(q.startswith("NodeQ_") for q in w.queue_names())
    )


def process_cpu_split(stack: Stack, nodes: list[Node], fleet: FastFleet) -> dict[str, float]:
    """CPU seconds used so far by each kind of process of the run (nodes summed)."""
    assert stack.controller is not None and stack.workers is not None
    redis_proc = getattr(stack.redis_server, "_proc", None)
    return {
        "nodes": sum(cpu_seconds(n.pid) for n in nodes),
        "controller": cpu_seconds(stack.controller.pid),
        "redis": cpu_seconds(redis_proc.pid) if redis_proc is not None else float("nan"),
        "simulator": cpu_seconds(fleet.pid),
        "FIFO pool (idle)": fifo_pool_cpu(stack),
        "benchmark client": cpu_seconds(os.getpid()),
    }


def profile_run(
    stack: Stack,
    fleet: FastFleet,
    nodes: list[Node],
    commands: list[str],
    rate: int,
) -> dict[str, Any]:
    """One more pinned run (not counted) with ``py-spy record --gil`` on every node and on
    the controller and the simulator, from just before the first submit to the last job's
    end: what holds each process's GIL, as collapsed stacks."""
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        return {"ran": False, "why": "py-spy not installed"}
    out_dir = Path(tempfile.mkdtemp(prefix="netpulse-bench-pyspy-"))
    assert stack.controller is not None
    targets = {f"node {n.name}": n.pid for n in nodes}
    targets["controller"] = stack.controller.pid
    targets["simulator"] = fleet.pid
    spies = {}
    for name, pid in targets.items():
        path = out_dir / (name.replace(" ", "-") + ".txt")
        argv = [str(py_spy), "record", "--gil", "--nonblocking", "--rate", str(rate)]
        argv += ["--format", "raw", "--output", str(path), "--pid", str(pid)]
        spies[name] = (
            subprocess.Popen(
                argv,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            ),
            path,
        )
    time.sleep(1.0)  # py-spy attached
    t0 = time.monotonic()
    cpu0 = {name: cpu_seconds(pid) for name, pid in targets.items()}
    try:
        run = run_jobs(stack, fleet.devices, commands, "pinned", timeout=300)
    finally:
        wall = time.monotonic() - t0 + 1.0
        cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in targets.items()}
        for proc, _ in spies.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)  # py-spy writes its output and exits
    profiles: dict[str, Any] = {}
    for name, (proc, path) in spies.items():
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if not path.exists():
            profiles[name] = {"error": err.decode(errors="replace")[-300:]}
            continue
        profiles[name] = summarize_profile(path.read_text(), wall, rate)
        profiles[name]["file"] = str(path)
        # A node's CPU per job is per job it ran; the others' per job of the run.
        jobs = run["finished"]
        if name.startswith("node "):
            jobs = run["per_queue"].get(f"NodeQ_{name[5:]}", 0)
        profiles[name]["jobs"] = jobs
        profiles[name]["cores"] = cpu[name] / run["elapsed"]
        profiles[name]["cpu_ms_per_job"] = cpu[name] / max(jobs, 1) * 1000
    return {"ran": True, "run": run, "profiles": profiles, "dir": str(out_dir), "rate": rate}


#: Where a GIL sample's stack is, by the first frame (from the leaf up) that matches.
PROFILE_BUCKETS = (
    ("paramiko / SSH transport", ("paramiko/",)),
    ("netmiko", ("netmiko/",)),
    ("asyncssh (simulator)", ("asyncssh/",)),
    ("redis-py", ("redis/",)),
    ("RQ", ("rq/",)),
    ("logging", ("logging/",)),
    ("threading / queue", ("threading.py", "queue.py")),
    ("pydantic", ("pydantic",)),
    ("FastAPI / Starlette / uvicorn", ("fastapi/", "starlette/", "uvicorn/", "anyio/")),
    ("json", ("json/",)),
    ("netpulse", ("netpulse/",)),
)


def summarize_profile(raw: str, seconds: float, rate: int) -> dict[str, Any]:
    """A py-spy raw (collapsed) profile taken with --gil: samples (and their share of the
    ticks: py-spy skips ticks when it gets no CPU itself), the top leaf functions, the share
    per library (innermost match) and per call site (the innermost RQ or NetPulse frame)."""
    total = 0
    leaves: dict[str, int] = {}
    buckets: dict[str, int] = {}
    sites: dict[str, int] = {}
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaf = frames[-1]
        leaves[leaf] = leaves.get(leaf, 0) + count
        for frame in reversed(frames):
            bucket = next(
                (b for b, marks in PROFILE_BUCKETS if any(m in frame for m in marks)), None
            )
            if bucket is not None:
                break
        else:
            bucket = "other"
        buckets[bucket] = buckets.get(bucket, 0) + count
        site = next(
            (f for f in reversed(frames) if "rq/" in f or "netpulse/" in f),
            "no RQ or NetPulse frame (" + frames[-1].split(" (")[0] + ")"
            if "paramiko/" not in stack
            else "no RQ or NetPulse frame (paramiko transport thread)",
        )
        site = re.sub(r":\d+\)$", ")", site)
        sites[site] = sites.get(site, 0) + count

    def ranked(counts: dict[str, int], k: int) -> list[tuple[str, float]]:
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:k]
        return [(name, c / max(total, 1)) for name, c in top]

    return {
        "samples": total,
        "coverage": total / (seconds * rate),
        "top": ranked(leaves, 10),
        "buckets": ranked(buckets, 12),
        "sites": ranked(sites, 12),
    }


#: The two ways the nodes part times a run: from the first submission (the controller and
#: this client share the host's cores with the nodes), and from the release of nodes held
#: with SIGSTOP while every job was queued (what the nodes themselves get through).
NODE_MODES = ("end to end", "queue drain")


def bench_nodes(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    """Pinned throughput with 1 and N worker nodes on this host (the scheduler, least_load,
    spreads the devices), in both :data:`NODE_MODES`, interleaved over rounds (the order
    rotates each round); each run starts cold (new nodes)."""
    from netpulse.nodes.directory import NodeDirectory

    counts = [int(x) for x in args.nodes.split(",")]
    configs = node_configs(counts, args.tp_threads, args.nodes_control)
    modes = NODE_MODES if args.nodes_drain else NODE_MODES[:1]
    plan = [(mode, config) for config in configs for mode in modes]
    commands = [f"echo round-{i:02d}" for i in range(args.tp_commands)]
    capacity = max(args.tp_devices, 100) + 50
    n = args.tp_devices * args.tp_commands
    runs: dict[str, dict[tuple[int, int], list[dict[str, Any]]]] = {
        mode: {c: [] for c in configs} for mode in modes
    }
    order: list[tuple[str, tuple[int, int]]] = []
    profile: dict[str, Any] = {}
    assert stack.redis is not None
    directory = NodeDirectory(stack.redis)
    with FastFleet(args.tp_devices) as fleet:
        for round_no in range(args.nodes_rounds):
            shift = round_no % len(plan)
            for index, (mode, config) in enumerate(plan[shift:] + plan[:shift]):
                order.append((mode, config))
                k, threads = config
                log(
                    f"nodes round {round_no + 1}/{args.nodes_rounds}: {n} pinned jobs on "
                    f"{config_name(config)}, {mode}, cold sessions"
                )
                with contextlib.ExitStack() as started:
                    nodes = [
                        started.enter_context(
                            Node(
                                stack,
                                f"bench-n{k}t{threads}-r{round_no}-{index}-{j}",
                                threads,
                                capacity,
                            )
                        )
                        for j in range(k)
                    ]
                    frozen = mode == NODE_MODES[1]
                    cpu0 = process_cpu_split(stack, nodes, fleet)
                    run = run_jobs(
                        stack,
                        fleet.devices,
                        commands,
                        "pinned",
                        timeout=300,
                        freeze=[x.pid for x in nodes] if frozen else None,
                        at_release=functools.partial(process_cpu_split, stack, nodes, fleet),
                    )
                    cpu1 = process_cpu_split(stack, nodes, fleet)
                    if frozen:
                        cpu0 = run["at_release"]
                    run["cpu_ms_per_job"] = {
                        name: (cpu1[name] - cpu0[name]) / n * 1000 for name in cpu0
                    }
                    run["devices_per_node"] = [len(directory.devices_of(x.name)) for x in nodes]
                    run["jobs_per_node"] = [
                        run["per_queue"].get(f"NodeQ_{x.name}", 0) for x in nodes
                    ]
                runs[mode][config].append(run)
                ms_job = run["cpu_ms_per_job"]
                log(
                    f"  {config_name(config)}, {mode}: {run['rate']:.1f} jobs/s "
                    f"({run['elapsed']:.1f} s, {errors_text(run)}); devices per node "
                    f"{run['devices_per_node']}, jobs per node {run['jobs_per_node']}; CPU ms/job "
                    + ", ".join(f"{k2} {v:.2f}" for k2, v in ms_job.items())
                    + f"; {describe_load(run['load'])}"
                )
        if args.nodes_profile:
            k = max(counts)
            log(f"nodes: profile run ({k} nodes, py-spy --gil on nodes, controller, simulator)")
            with contextlib.ExitStack() as started:
                nodes = [
                    started.enter_context(Node(stack, f"bench-prof-{j}", args.tp_threads, capacity))
                    for j in range(k)
                ]
                profile = profile_run(stack, fleet, nodes, commands, args.profile_rate)
            if profile.get("ran"):
                log(f"  profile run: {profile['run']['rate']:.1f} jobs/s (with py-spy attached)")
    one = (1, args.tp_threads)
    rates = {
        mode: {c: median(r["rate"] for r in rs) for c, rs in by_config.items()}
        for mode, by_config in runs.items()
    }
    return {
        "n": n,
        "modes": modes,
        "configs": configs,
        "order": order,
        "runs": runs,
        "rates": rates,
        "ratios": {
            mode: {c: rate / by_config[one] for c, rate in by_config.items()}
            for mode, by_config in rates.items()
        },
        "paired": {
            mode: {
                c: [r["rate"] / b["rate"] for r, b in zip(rs, by_config[one], strict=True)]
                for c, rs in by_config.items()
            }
            for mode, by_config in runs.items()
        },
        "profile": profile,
    }


def nodes_report(args: argparse.Namespace, res: dict[str, Any], elapsed: float) -> str:
    counts = [int(x) for x in args.nodes.split(",")]
    top = (max(counts), args.tp_threads)
    one = (1, args.tp_threads)
    #: The mode the target is judged on: the queue drain when it was measured.
    judged = res["modes"][-1]
    rows: list[list[Any]] = []
    for mode in res["modes"]:
        for config in res["configs"]:
            rs = res["runs"][mode][config]
            ratio = res["ratios"][mode][config]
            is_target = mode == judged and config == top and config[0] > 1
            rows.append(
                [
                    f"{args.tp_devices} devices x {args.tp_commands} commands ({res['n']} pinned "
                    f"jobs, fastsim), {config_name(config)}, {mode}"
                    + (
                        " (control: one process, as many threads)"
                        if config[0] == 1 and config[1] != args.tp_threads
                        else ""
                    ),
                    f"**{res['rates'][mode][config]:.1f} jobs/s** (median of {len(rs)}: "
                    + ", ".join(f"{r['rate']:.1f}" for r in rs)
                    + ")",
                    f"{ratio:.2f}x one node",
                    ">= 1.7x one node" if is_target else "-",
                    verdict(ratio >= 1.7) if is_target else "-",
                ]
            )
    notes: list[str] = []
    for mode in res["modes"]:
        for config in res["configs"]:
            for i, r in enumerate(res["runs"][mode][config]):
                ms_job = r["cpu_ms_per_job"]
                total = sum(v for v in ms_job.values() if v == v)
                timed = (
                    f"release to last ended_at {r['elapsed']:.1f} s (submitted with the nodes "
                    f"held in {r['submit_seconds']:.1f} s)"
                    if r["frozen"]
                    else f"first submit to last ended_at {r['elapsed']:.1f} s (submit "
                    f"{r['submit_seconds']:.1f} s)"
                )
                notes.append(
                    f"- {config_name(config)}, {mode}, run {i + 1}: {r['rate']:.1f} jobs/s, "
                    f"{timed}; {r['finished']} finished, {errors_text(r)}; {r['reused']} on a "
                    f"reused session; devices per node {r['devices_per_node']}, jobs per node "
                    f"{r['jobs_per_node']}; job duration median {ms(r['duration_median'])} / "
                    f"p95 {ms(r['duration_p95'])}; CPU per job (ms, over the timed span): "
                    + ", ".join(f"{k} {v:.2f}" for k, v in ms_job.items())
                    + f" (sum {total:.2f} ms = {total * r['rate'] / 1000:.2f} cores at this "
                    f"rate); {describe_load(r['load'])}."
                )
    paired = "; ".join(
        f"{config_name(c)}, {mode} {[round(x, 2) for x in v]}"
        for mode, by_config in res["paired"].items()
        for c, v in by_config.items()
        if c != one
    )
    notes.append(
        "- Order of the runs (rotated each round): "
        + ", ".join(f"{config_name(c)} ({mode})" for mode, c in res["order"])
        + f". Ratio to the 1-node run of the same round and mode: {paired}."
    )
    for mode in res["modes"]:
        if top not in res["runs"][mode] or top[0] <= 1:
            continue
        rs = res["runs"][mode][top]
        cores = rs[0]["load"]["cores"]
        per_job = median(sum(v for v in r["cpu_ms_per_job"].values() if v == v) for r in rs)
        lab = median(
            r["cpu_ms_per_job"]["simulator"] + r["cpu_ms_per_job"]["benchmark client"] for r in rs
        )
        nodes_ms = median(r["cpu_ms_per_job"]["nodes"] for r in rs)
        base = res["rates"][mode][one]
        one_runs = res["runs"][mode][one]
        one_node_cores = median(r["cpu_ms_per_job"]["nodes"] * r["rate"] / 1000 for r in one_runs)
        busy = median(r["load"]["busy_cores"] for r in rs)
        ceiling = cores * 1000 / per_job
        no_lab = cores * 1000 / (per_job - lab)
        notes.append(
            f"- What the {cores} cores allow, {mode}: with {config_name(top)} every process "
            f"of the run together used {per_job:.2f} ms of CPU per job (median; nodes "
            f"{nodes_ms:.2f} ms) and the machine was {busy:.2f} of {cores} cores busy, so the "
            f"host tops out near {cores} x 1000 / {per_job:.2f} = {ceiling:.0f} jobs/s = "
            f"{ceiling / base:.2f}x one node, whatever the number of nodes. One node is bound "
            f"by its own process instead (its CPU per job x its rate = {one_node_cores:.2f} of "
            f"a core, one GIL). Of the per-job CPU, {lab:.2f} ms is the lab's (the fastsim "
            f"devices and this benchmark's client, which a NetPulse host does not run): without "
            f"it the ceiling would be {no_lab:.0f} jobs/s = {no_lab / base:.2f}x one node."
        )
    prof = res.get("profile") or {}
    if prof.get("ran"):
        parts = []
        for name, p in prof["profiles"].items():
            if "error" in p:
                parts.append(f"{name}: py-spy failed ({p['error']})")
                continue
            buckets = ", ".join(f"{b} {share:.0%}" for b, share in p["buckets"][:7])
            sites = "; ".join(f"`{site}` {share:.0%}" for site, share in p["sites"][:8])
            leaves = "; ".join(f"`{leaf}` {share:.0%}" for leaf, share in p["top"][:4])
            parts.append(
                f"**{name}** ({p['cpu_ms_per_job']:.2f} ms CPU per job of its "
                f"{p['jobs']}, {p['cores']:.2f} of a core over the run; {p['samples']} samples): "
                f"by library (innermost frame): {buckets}. By "
                f"call site (innermost RQ or NetPulse frame): {sites}. Top leaf functions: "
                f"{leaves}"
            )
        notes.append(
            f"- Profile run (not counted; {max(counts)} nodes x {args.tp_threads} threads, "
            f"`py-spy record --gil --nonblocking --rate {prof['rate']}` on each node, the "
            f"controller and the simulator at once; {prof['run']['rate']:.1f} jobs/s with "
            f"py-spy attached). Shares are of each process's samples (with --gil, a sample is "
            f"the thread holding the GIL, i.e. the process's Python work); py-spy itself gets "
            f"little CPU on the 2 busy cores and skips ticks, so the sample counts are not a "
            f"measure of GIL use (the CPU figures are from /proc): "
            + " | ".join(parts)
            + f". Raw profiles (collapsed stacks): {prof['dir']}."
        )
    notes.append(
        "- Setup: one stack (private redis-server, controller, FIFO pool of "
        f"{SMALL_POOL} idle workers, no delivery service), one fastsim process with "
        f"{args.tp_devices} devices; each run starts its own nodes (`netpulse worker node "
        f"--name ... --threads T --capacity {max(args.tp_devices, 100) + 50}`, distinct "
        "names), so every run starts cold (the first job per device opens its session); the "
        "devices are placed at submit time by the scheduler (`least_load`, the default). "
        f"Jobs/s = finished jobs / (first submit to last ended_at); submitted in "
        f"{args.tp_commands} bulk requests of {args.tp_devices}. "
        f"Product: commit {git_head()} of /work/main (other engineers' uncommitted edits may "
        "be present)."
    )
    headers = ["Benchmark", "Measured", "Ratio", "Target", "Verdict"]
    text = table(headers, rows) + "\n\n" + "\n".join(notes) + "\n"
    return (
        section_header(f"{NODES_SECTION} (bench/sessions.py --parts nodes)", elapsed) + "\n" + text
    )


# -- report -----------------------------------------------------------------------------------


def throughput_note(tp: dict[str, Any]) -> str:
    """Why pinned throughput stays under 5x FIFO (the figures of this run)."""
    pinned, fifo = tp["runs"]["pinned"], tp["runs"]["fifo"]
    node_ms = median(r["node_ms_per_job"] for r in pinned)
    node_cores = median(r["node_ms_per_job"] * r["rate"] / 1000 for r in pinned)
    busy = median(r["load"]["busy_cores"] for r in pinned)
    cores = pinned[0]["load"]["cores"]
    pinned_s = median(r["duration_median"] for r in pinned)
    fifo_s = median(r["duration_median"] for r in fifo)
    threads = tp["threads"]
    return (
        f"- Why pinned throughput stays under 5x: at equal concurrency ({threads} node job "
        f"threads, {tp['fifo_workers']} FIFO workers) the ratio is bounded by how much longer "
        f"a FIFO job takes than a pinned one. A pinned job took {ms(pinned_s)} (median; the "
        f"warm fastsim command alone is ~80 ms), so {threads} threads top out near "
        f"{threads / pinned_s:.0f} jobs/s whatever the CPU; a FIFO job (connect, command, "
        f"disconnect) took {ms(fifo_s)}, i.e. {fifo_s / pinned_s:.1f}x. The node processes "
        f"used {node_ms:.1f} ms of CPU per job ({node_cores:.2f} of a core over "
        f"{tp['nodes']} process(es); the machine was {busy:.2f} of {cores} cores busy), so "
        "CPU is not the limit. The ratio reached 5x while fastsim's connect was dearer (it "
        "built asyncssh's line-editor table for every new session, which FIFO pays per job); "
        "more threads per node (the default is 32) raise pinned throughput, not FIFO's."
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def errors_text(run: dict[str, Any]) -> str:
    if not run["failed"]:
        return "none failed"
    return f"{run['failed']} failed ({'; '.join(f'{k}: {v}' for k, v in run['errors'].items())})"


def report(args: argparse.Namespace, res: dict[str, Any], elapsed: float) -> str:
    rows: list[list[Any]] = []
    notes: list[str] = []
    for lat in res.get("latency", []):
        ph = lat["phases"]
        if lat["label"] == "FakeNOS":
            rows.append(
                [
                    f"Warm `{COMMAND}` on FakeNOS cisco_ios, median of {args.runs}",
                    f"direct {ms(lat['direct'])}; API {ms(lat['api'])}",
                    f"ratio **{lat['ratio']:.3f}**",
                    "<= 1.15",
                    verdict(lat["ratio"] <= 1.15),
                ]
            )
        else:
            rows.append(
                [
                    f"Warm `{COMMAND}` on fastsim, median of {args.runs}",
                    f"direct {ms(lat['direct'])}; API {ms(lat['api'])}",
                    f"added **{ms(lat['overhead'])}** (ratio {lat['ratio']:.2f})",
                    "<= 15 ms",
                    verdict(lat["overhead"] <= 0.015),
                ]
            )
        notes.append(
            f"- Latency {lat['label']}: direct min/max {ms(lat['direct_range'][0])}/"
            f"{ms(lat['direct_range'][1])}; API min/max {ms(lat['api_range'][0])}/"
            f"{ms(lat['api_range'][1])}, p90 {ms(lat['api_p90'])}. Medians of the API path: "
            f"POST to enqueued {ms(ph['submit'])}, queue (enqueued_at to started_at) "
            f"{ms(ph['queue'])}, send_command in the job {ms(ph['send'])}, rest of the job "
            f"{ms(ph['job_minus_send'])}, ended_at to the client's GET answer "
            f"{ms(ph['end_to_client'])}. Per API job: {lat['redis_calls']:.0f} Redis commands; "
            f"CPU controller {lat['cpu_ms']['controller']:.1f} ms, node "
            f"{lat['cpu_ms']['node']:.1f} ms (send_command itself uses ~2 ms of it), redis "
            f"{lat['cpu_ms']['redis']:.1f} ms. {describe_load(lat['load'])}."
        )
        if lat["label"] != "FakeNOS" and lat["overhead"] > 0.015:
            notes.append(
                "- Why the fastsim overhead misses 15 ms: no single hot spot. The job crosses "
                "three processes (controller -> Redis -> node -> Redis -> controller) and RQ's "
                "per-job bookkeeping (the Redis commands above, in ~25 round trips: execution "
                "record, started/finished registries, 3 worker heartbeats, result stream, "
                "rate-limit slot, success callback in a timer thread) sits on the critical path "
                "before and after send_command; every hop also waits for a CPU while other "
                "processes use most of the 2 cores (CPU figures above). Suggested product "
                "fixes: `dispatch/submit.py::enqueue` attaches `on_success` only when the "
                "request has a webhook (today a no-op callback runs in a new timer thread per "
                "job); `nodes/process.py::SessionWorker` throttles RQ's `heartbeat()` (3 per job; "
                "the node beats on its own) and logs RQ's per-job INFO lines at WARNING; "
                "`nodes/directory.py::NodeDirectory.place` returns the live owner from one "
                "pipeline (HGET assign, EXISTS alive/draining) instead of reading every node "
                "and its device set per submit; `api/routes/jobs.py::get_job` loads and "
                "renders the job in one thread-pool call after the wake-up."
            )
    ka = res.get("keepalive")
    if ka:
        rows.append(
            [
                "A warm fastsim session outlives the node's keepalive probe (probe every 1 s)",
                f"session reused before probes: {ka['reused_before_probe']}, after: "
                f"{ka['reused_after_probe']}; {ka['incomplete_packet']} 'Incomplete packet' "
                "disconnects in the node log",
                "kept" if ka["reused_after_probe"] else "**dropped**",
                "kept",
                verdict(ka["reused_after_probe"]),
            ]
        )
    sc = res.get("scale")
    if sc:
        total_mib = max(sc["after"]["total_mib"], sc["after"]["hwm_mib"])
        rows.append(
            [
                f"{sc['count']} warm sessions on one node (fastsim), memory",
                f"node VmRSS {sc['after']['rss_mib']:.0f} MiB (peak VmHWM "
                f"{sc['after']['hwm_mib']:.0f} MiB), {sc['after']['children']} child processes, "
                f"{sc['sockets']} sockets",
                f"**{total_mib / GIB:.2f} GiB**",
                "< 1.5 GiB",
                verdict(total_mib < 1.5 * GIB),
            ]
        )
        rows.append(
            [
                f"One command on each of the {sc['count']} warm devices",
                f"first submit to last ended_at; {sc['served']['reused']}/{sc['count']} on a "
                f"reused session, {errors_text(sc['served'])}; warm-up "
                f"{sc['warm']['elapsed']:.1f} s",
                f"**{sc['served']['elapsed']:.2f} s**",
                "< 20 s",
                verdict(
                    sc["served"]["elapsed"] < 20
                    and sc["served"]["reused"] == sc["count"]
                    and not sc["served"]["failed"]
                ),
            ]
        )
        retried = ", ".join(str(r["jobs"]) for r in sc["retries"]) or "none"
        lost = sc["count"] - sc["served"]["reused"]
        if lost:
            notes.append(
                f"- Scale: **{lost} of {sc['count']} jobs of the served round found no "
                "warm session** and connected again (see the node log)."
            )
        notes.append(
            f"- Scale: node `--threads {sc['threads']} --capacity {sc['capacity']}`. "
            "RSS idle "
            f"{sc['idle']['rss_mib']:.0f} MiB, after warm-up {sc['after_warm']['rss_mib']:.0f} "
            f"MiB, after the round {sc['after']['rss_mib']:.0f} MiB; "
            f"{sc['after_warm']['threads']} threads once warm (one paramiko transport thread "
            f"per session); holding {sc['count']} idle sessions costs "
            f"{sc['idle_cpu'] * 100:.0f} % of a core. Warm-up (cold, {sc['count']} connects): "
            f"{sc['warm']['elapsed']:.1f} s, node CPU {sc['warm_cpu']:.1f} s, "
            f"{errors_text(sc['warm'])}, re-submitted: {retried}; "
            f"{describe_load(sc['warm_load'])}. Served round: submit "
            f"({-(-sc['count'] // 100)} bulk requests of up to 100) "
            f"{sc['served']['submit_seconds']:.2f} s, job duration median "
            f"{ms(sc['served']['duration_median'])} / p95 {ms(sc['served']['duration_p95'])}, "
            f"node CPU {sc['served_cpu']:.1f} s; {describe_load(sc['served_load'])}. Node stop "
            f"(closes {sc['count']} sessions): {sc['stop_seconds']:.1f} s."
        )
    tp = res.get("throughput")
    if tp:
        n = tp["devices"] * tp["commands"]
        each = len(tp["runs"]["pinned"])
        rows.append(
            [
                f"{tp['devices']} devices x {tp['commands']} commands ({n} jobs, fastsim): "
                f"pinned ({tp['nodes']} node(s), {tp['threads']} job threads in all) vs FIFO "
                f"({tp['fifo_workers']} workers), median of {each} each",
                f"pinned {tp['pinned_rate']:.1f} jobs/s; FIFO {tp['fifo_rate']:.1f} jobs/s "
                f"(NetPulse CPU per job {tp['cpu_ratio']:.1f}x lower pinned)",
                f"**{tp['speedup']:.1f}x**",
                ">= 5x",
                verdict(tp["speedup"] >= 5),
            ]
        )
        counters = {"pinned": 0, "fifo": 0}
        for kind in tp["order"]:
            r = tp["runs"][kind][counters[kind]]
            counters[kind] += 1
            extra = (
                f", of which the node processes {r['node_ms_per_job']:.1f} ms (x "
                f"{r['rate']:.0f} jobs/s = {r['node_ms_per_job'] * r['rate'] / 1000:.2f} of a "
                f"core, in {tp['nodes']} Python process(es))"
                if kind == "pinned"
                else ""
            )
            notes.append(
                f"- Throughput {kind} run {counters[kind]} (order {' '.join(tp['order'])}): "
                f"**{r['rate']:.1f} jobs/s**, first submit to last ended_at {r['elapsed']:.1f} s "
                f"(submit, {tp['commands']} bulk requests of {tp['devices']}: "
                f"{r['submit_seconds']:.1f} s); {r['finished']} finished, {errors_text(r)}; "
                f"{r['reused']} on a reused session; job duration median "
                f"{ms(r['duration_median'])} / p95 {ms(r['duration_p95'])}; CPU per job: "
                f"NetPulse processes {r['netpulse_ms_per_job']:.1f} ms{extra}, simulator "
                f"{r['sim_ms_per_job']:.1f} ms; {describe_load(r['load'])}."
            )
        if tp["speedup"] < 5:
            notes.append(throughput_note(tp))
        notes.append(
            "- Pinned starts cold (a new node per pinned run): its first job per device opens "
            "the session (included). Per-device caps: pinned 1, FIFO 2 "
            "(node.pinned_concurrency / fifo_concurrency)."
        )
    headers = ["Benchmark", "Measured", "Result", "Target", "Verdict"]
    text = table(headers, rows) + "\n\n" + "\n".join(notes) + "\n"
    text += (
        "- Setup: a fresh stack per part (private redis-server, controller, FIFO pool "
        f"(`netpulse worker fifo`) of {args.fifo_workers} for the throughput part and "
        f"{SMALL_POOL} elsewhere), no webhook delivery service; one node per part or per "
        "pinned run (`netpulse worker node`), stopped after it. FakeNOS and fastsim run in "
        "their own processes; the direct netmiko client runs in the benchmark process. "
        "Machine shared with other engineers' runs: see the CPU figures per part.\n"
        f"- Product: commit {git_head()} of /work/main (other engineers' uncommitted edits "
        "elsewhere in the tree may be present).\n"
    )
    return section_header(f"{SECTION} (bench/sessions.py)", elapsed) + "\n" + text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--parts",
        default=DEFAULT_PARTS,
        help=f"comma-separated, of {DEFAULT_PARTS},nodes (nodes: its own section)",
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--scale-devices", type=int, default=500)
    parser.add_argument("--scale-threads", type=int, default=32)
    parser.add_argument("--scale-capacity", type=int, default=600)
    parser.add_argument("--tp-devices", type=int, default=100)
    parser.add_argument("--tp-commands", type=int, default=20)
    parser.add_argument(
        "--tp-threads", type=int, default=16, help="node job threads in all (throughput part)"
    )
    parser.add_argument(
        "--tp-nodes",
        type=int,
        default=1,
        help="node processes of the throughput part's pinned runs, sharing --tp-threads",
    )
    parser.add_argument("--fifo-workers", type=int, default=16)
    parser.add_argument("--tp-repeats", type=int, default=2, help="runs of each, ABBA order")
    parser.add_argument(
        "--nodes", default="1,2", help="node counts of the nodes part (comma-separated)"
    )
    parser.add_argument("--nodes-rounds", type=int, default=3, help="rounds of the nodes part")
    parser.add_argument(
        "--nodes-control",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also one node with as many threads as the largest count's nodes together",
    )
    parser.add_argument(
        "--nodes-drain",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time each configuration as a queue drain (nodes held with SIGSTOP while "
        "the jobs are submitted): the nodes' own capacity, the target's measure",
    )
    parser.add_argument(
        "--nodes-profile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one more run (not counted) under py-spy record --gil",
    )
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples/s")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    unknown = parts - set(DEFAULT_PARTS.split(",")) - {"nodes"}
    if unknown:
        parser.error(f"unknown parts: {sorted(unknown)}")
    t0 = time.monotonic()
    res: dict[str, Any] = {}
    # A fresh stack (redis, controller, FIFO pool) per part: one part's leftovers (hundreds of
    # device assignments, rate-limit keys, finished jobs) never weigh on the next part.
    if parts & {"latency", "keepalive"}:
        with Stack(fifo_workers=SMALL_POOL, delivery=False) as stack:
            if "latency" in parts:
                # One node per device, started right before it: each part ends well before the
                # node's first keepalive probe (30 s), which would drop a fastsim session.
                res["latency"] = []
                with (
                    Fleet("cisco_ios", 1) as fleet,
                    Node(stack, "bench-lat-fakenos", 4, 10) as node,
                ):
                    res["latency"].append(
                        bench_latency(stack, node, fleet.devices[0], args.runs, "FakeNOS")
                    )
                with FastFleet(1) as fast, Node(stack, "bench-lat-fastsim", 4, 10) as node:
                    res["latency"].append(
                        bench_latency(stack, node, fast.devices[0], args.runs, "fastsim")
                    )
            if "keepalive" in parts:
                res["keepalive"] = bench_keepalive(stack)
    if "scale" in parts:
        with Stack(fifo_workers=SMALL_POOL, delivery=False) as stack:
            res["scale"] = bench_scale(
                stack, args.scale_devices, args.scale_threads, args.scale_capacity
            )
    if "throughput" in parts:
        with Stack(fifo_workers=args.fifo_workers, delivery=False) as stack:
            res["throughput"] = bench_throughput(
                stack,
                args.tp_devices,
                args.tp_commands,
                args.tp_threads,
                args.fifo_workers,
                args.tp_repeats,
                args.tp_nodes,
            )
    nodes_text = ""
    if "nodes" in parts:
        quiet = wait_for_quiet()
        log(f"nodes: load before {quiet['first']}, waited {quiet['waited']:.0f} s")
        common.LOAD_AT_START = quiet["start"]  # the section's "at start": after the wait
        nodes_t0 = time.monotonic()
        with Stack(fifo_workers=SMALL_POOL, delivery=False) as stack:
            res["nodes"] = bench_nodes(stack, args)
        nodes_text = nodes_report(args, res["nodes"], time.monotonic() - nodes_t0)
        print()
        print(nodes_text)
        if not args.no_write:
            update_results(NODES_SECTION, nodes_text)
            log(f"bench/RESULTS.md updated (section {NODES_SECTION!r})")
    elapsed = time.monotonic() - t0
    main_parts = parts - {"nodes"}
    if main_parts:
        text = report(args, res, elapsed)
        print()
        print(text)
        if not args.no_write:
            # A partial run gets its own section: it never replaces the full run's figures.
            name = SECTION
            if main_parts != set(DEFAULT_PARTS.split(",")):
                name = f"{SECTION}: {', '.join(sorted(main_parts))}"
            update_results(name, text)
            log(f"bench/RESULTS.md updated (section {name!r})")
    log(f"done in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
