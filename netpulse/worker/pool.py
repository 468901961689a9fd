"""Run the FIFO worker pool: N forking RQ workers (RQ's `WorkerPool`) on the FIFO queue.

On top of RQ's pool:
- every pool process has a fresh id (its instance), announced with a heartbeat in
  :mod:`netpulse.worker.pool_directory`, and its workers are named after it, so the jobs of a
  pool that died are known to be abandoned at once (also when a new pool starts on the same
  host under the same command), instead of after RQ's heartbeat expiry plus its 10-minute
  maintenance interval;
- each worker process builds its Redis connection from the configured URL (plain or Sentinel)
  and keeps serving through Redis outages (:mod:`netpulse.worker.serving`);
- workers die with the pool (``die_with_parent``), so no worker outlives a killed pool.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import uuid
from typing import Any, cast

from redis import Redis
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.worker_pool import WorkerData, WorkerPool

from netpulse.config import Settings
from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS, OutageLog
from netpulse.runtime.processes import process_gone
from netpulse.runtime.redis_conn import connect
from netpulse.worker.job_end import publish_job_end
from netpulse.worker.pool_directory import (
    HEARTBEAT_INTERVAL,
    HEARTBEAT_TTL,
    PoolDirectory,
    PoolInfo,
)
from netpulse.worker.rq_worker import NetPulseWorker
from netpulse.worker.stranded import StrandedJobs

log = logging.getLogger(__name__)

#: Prefix of every FIFO worker's name: ``fifo.<pool id>.<n>``.
WORKER_PREFIX = "fifo."

#: Seconds between two looks for jobs of dead pools (and RQ's abandoned-job cleanup).
SWEEP_INTERVAL = 5.0


def preload() -> None:
    """Import what every job needs once, so each forked work-horse starts warm: the driver
    libraries, the credential providers' libraries (hvac), the callbacks (outbox, events)
    and the settings."""
    import netpulse.worker.callbacks
    import netpulse.worker.task  # noqa: F401
    from netpulse.config import get_settings
    from netpulse.credentials import registry as credential_registry
    from netpulse.drivers import registry
    from netpulse.webhooks.callers import registry as webhook_registry

    registry.names()
    webhook_registry.names()
    credential_registry.names()
    get_settings()


def new_pool_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def pool_of_worker(worker_name: str) -> str | None:
    """The pool id in a FIFO worker's name, or None for a worker of another kind."""
    if not worker_name.startswith(WORKER_PREFIX):
        return None
    pool_id, _, _ = worker_name[len(WORKER_PREFIX) :].rpartition(".")
    return pool_id or None


def dead_pool_ids(pools: list[PoolInfo], hostname: str, trust_heartbeats: bool) -> set[str]:
    """Pools known to be dead: a process of this host that no longer exists (a pool restarted
    right after a crash must not wait for the old heartbeat to expire), or, when heartbeats
    can be trusted, a pool that stopped beating.

    Heartbeats cannot be trusted for a while after Redis came back: every heartbeat key may
    have expired during the outage, and live pools need one beat to show up again."""
    return {
        p.pool_id
        for p in pools
        if (p.hostname == hostname and p.pid > 0 and process_gone(p.pid))
        or (trust_heartbeats and not p.alive)
    }


def fail_jobs_of_dead_pools(conn: Redis, queue_name: str, live_pool_ids: set[str]) -> list[str]:
    """End as abandoned (``worker_lost``, one ``job.failed`` each) the started jobs of FIFO
    workers whose pool is not alive, then run RQ's own abandoned-job cleanup.

    RQ's cleanup takes entries whose heartbeat expired; the entries of a dead pool's jobs are
    made expired first, so RQ does the rest as for any abandoned job (failure callback, failed
    registry, the device's rate-limit slot released)."""
    registry = StartedJobRegistry(queue_name, connection=conn)
    # Without ``withscores`` ZRANGE returns the members alone (redis-py types every form).
    entries = [m.decode() for m in cast(list[bytes], conn.zrange(registry.key, 0, -1))]
    if entries:
        with conn.pipeline() as pipe:
            for entry in entries:
                pipe.hget(Job.key_for(entry.split(":", 1)[0]), "worker_name")
            workers = pipe.execute()
        orphaned = {}
        for entry, raw in zip(entries, workers, strict=True):
            pool_id = pool_of_worker(raw.decode()) if raw else None
            if pool_id is not None and pool_id not in live_pool_ids:
                orphaned[entry] = 0
        if orphaned:
            conn.zadd(registry.key, orphaned, xx=True)
            log.warning(
                "%d job(s) on %s were running on FIFO pools that died; failing them as abandoned",
                len(orphaned),
                queue_name,
            )
    ids = [entry.split(":", 1)[0] for entry in registry.get_expired_job_ids()]
    registry.cleanup()
    publish_job_end(conn, ids)
    return ids


def run_fifo_worker(
    worker_name: str,
    queue_names: list[str],
    redis_url: str,
    logging_level: str,
    burst: bool,
    pool_pid: int,
) -> None:
    """The body of one FIFO worker process (forked by the pool)."""
    from netpulse.runtime.lifeline import die_with_parent
    from netpulse.worker.serving import serve

    # The pool's pid, known before the fork: a pool that died before this line is noticed
    # even when the worker was adopted by a subreaper rather than by init.
    die_with_parent(expected_parent=pool_pid)
    conn = connect(redis_url)
    stop = {"requested": False}

    def request_stop(*_: Any) -> None:
        stop["requested"] = True

    def own_handlers() -> None:
        # RQ installs its own handlers in work(); these cover the time between two loops.
        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

    def make_worker() -> NetPulseWorker:
        worker = NetPulseWorker(queue_names, name=worker_name, connection=conn)
        worker.pending_stop = lambda: stop["requested"]
        return worker

    own_handlers()
    serve(
        make_worker,
        conn,
        stopping=lambda: stop["requested"],
        between_loops=own_handlers,
        burst=burst,
        logging_level=logging_level,
        # RQ's scheduler (delayed and repeated jobs) is not used by NetPulse; not starting it
        # saves a process per worker that would otherwise have to be watched as well.
        with_scheduler=False,
    )


class FifoPool(WorkerPool):
    """RQ's pool with an instance id, a heartbeat and resilient, self-connecting workers."""

    def __init__(self, settings: Settings, size: int, conn: Redis) -> None:
        super().__init__(
            [settings.worker.fifo_queue],
            connection=conn,
            num_workers=size,
            worker_class=NetPulseWorker,
        )
        self.name = new_pool_id()
        self.settings = settings
        self.directory = PoolDirectory(conn)
        self._logging_level = settings.log_level
        self._next_beat = 0.0
        self._next_sweep = 0.0
        self._outage = OutageLog(log, f"FIFO pool {self.name}")
        self._serial = 0
        #: Until then, a missing heartbeat of another pool may only mean Redis was away.
        self._trust_heartbeats_at = time.monotonic() + HEARTBEAT_TTL + HEARTBEAT_INTERVAL
        self.stranded = StrandedJobs(conn, settings.worker.fifo_queue)

    # -- RQ's pool, with our worker names and our worker body ---------------------------------

    def start_worker(
        self,
        count: int | None = None,
        burst: bool = True,
        _sleep: float = 0,
        logging_level: str = "INFO",
    ) -> None:
        self._serial += 1
        name = f"{WORKER_PREFIX}{self.name}.{self._serial}"
        from multiprocessing import get_context

        process = get_context("fork").Process(
            target=run_fifo_worker,
            args=(
                name,
                self._queue_names,
                self.settings.redis_url,
                self._logging_level,
                burst,
                os.getpid(),
            ),
            name=f"Worker {name} (FifoPool {self.name})",
        )
        process.start()
        assert process.pid is not None
        self.worker_dict[name] = WorkerData(name=name, pid=process.pid, process=process)
        log.debug("spawned FIFO worker %s with pid %d", name, process.pid)

    def check_workers(self, respawn: bool = True) -> None:
        super().check_workers(respawn=respawn)
        self._maintain()

    # -- pool liveness and recovery -----------------------------------------------------------

    def announce(self) -> None:
        """Register the pool, waiting for Redis if it is not there yet."""
        from netpulse.runtime.outage import wait_for_redis

        wait_for_redis(self.connection.ping, self._outage)
        self.directory.register(self.name, self.num_workers)
        self.sweep()

    def _maintain(self) -> None:
        now = time.monotonic()
        try:
            if now >= self._next_beat:
                if not self.directory.heartbeat_known(self.name):
                    log.error(
                        "FIFO pool %s: its registration was missing (Redis lost its data, or "
                        "the pool was taken for dead): jobs and deliveries stored before that "
                        "are gone; registering again",
                        self.name,
                    )
                    self.directory.register(self.name, self.num_workers)
                self._next_beat = now + HEARTBEAT_INTERVAL
            if now >= self._next_sweep:
                self.sweep()
                self._next_sweep = now + SWEEP_INTERVAL
        except REDIS_OUTAGE_ERRORS as exc:
            self._outage.failed(exc)
            self._trust_heartbeats_at = time.monotonic() + HEARTBEAT_TTL + HEARTBEAT_INTERVAL
            self._next_beat = 0.0
            return
        self._outage.recovered()

    def sweep(self) -> list[str]:
        """Fail the running jobs of FIFO pools that died; forget those pools; put back the
        jobs a worker took from the queue but never started (:mod:`netpulse.worker.stranded`)."""
        self.stranded.sweep()
        pools = self.directory.pools()
        trust = time.monotonic() >= self._trust_heartbeats_at
        dead = dead_pool_ids(pools, socket.gethostname(), trust) - {self.name}
        live = {p.pool_id for p in pools if p.pool_id not in dead} | {self.name}
        failed = fail_jobs_of_dead_pools(self.connection, self._queue_names[0], live)
        for pool_id in dead:
            log.warning("FIFO pool %s is gone; forgetting it", pool_id)
            self.directory.forget(pool_id)
        return failed

    def leave(self) -> None:
        try:
            self.directory.forget(self.name)
        except REDIS_OUTAGE_ERRORS as exc:
            log.warning(
                "FIFO pool %s: Redis unreachable at exit (%s); its entry expires by itself",
                self.name,
                exc,
            )


def run_pool(settings: Settings, size: int | None = None, burst: bool = False) -> None:
    preload()
    conn = connect(settings.redis_url)
    pool = FifoPool(settings, size or settings.worker.pool_size, conn)
    log.info(
        "starting FIFO pool %s: %d workers on %s",
        pool.name,
        pool.num_workers,
        settings.worker.fifo_queue,
    )
    pool.announce()
    try:
        pool.start(burst=burst, logging_level=settings.log_level)
    finally:
        pool.leave()
