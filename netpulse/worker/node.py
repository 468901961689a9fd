"""A worker node: one process that holds many warm device sessions.

Each node serves its own queue ``NodeQ_<name>`` with several RQ ``SimpleWorker`` threads
(:class:`SessionWorker`), all sharing one :class:`SessionPool`. Per-device ordering and the
per-device concurrency cap come from RQ's ``RateLimit`` at enqueue time, so a device never has
two jobs running at once whichever thread takes them. Threads instead of forked work-horses:
a session is a live socket and must outlive the job that opened it.

The node announces itself (capacity, heartbeat) and watches the other nodes: when one stops
beating, its devices and queued jobs move to live nodes (``netpulse.nodes.failover``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.timeouts import TimerDeathPenalty

from netpulse.config import Settings
from netpulse.nodes import failover
from netpulse.nodes.directory import HEARTBEAT_INTERVAL, NodeDirectory, node_queue
from netpulse.sessions.pool import SessionPool
from netpulse.worker.registries import ThreadedStartedJobRegistry
from netpulse.worker.rq_worker import JobEndPublisher

log = logging.getLogger(__name__)

#: Seconds between a node thread's own RQ heartbeats (RQ would send one per job).
HEARTBEAT_EVERY = 5.0

#: The pool of the node this process runs, used by the job function (None elsewhere).
CURRENT_POOL: SessionPool | None = None


class SessionWorker(JobEndPublisher, SimpleWorker):
    """An RQ worker running in a thread of a node process."""

    death_penalty_class = TimerDeathPenalty

    def __init__(self, *args: Any, pool: SessionPool, **kwargs: Any) -> None:
        kwargs.setdefault("worker_ttl", 20)  # a lost node's workers vanish from `rq info` soon
        super().__init__(*args, **kwargs)
        self.pool = pool
        self._running: Job | None = None

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ beats after every job; many short jobs per thread need far fewer beats (the
        worker key lives ``worker_ttl`` + 60 s, so one every few seconds is plenty)."""
        if pipeline is None and timeout is None:
            last = getattr(self, "_last_beat", 0.0)
            if time.monotonic() - last < HEARTBEAT_EVERY:
                return
            self._last_beat = time.monotonic()
        super().heartbeat(timeout, pipeline)

    def _install_signal_handlers(self) -> None:
        """Signals belong to the node's main thread, which stops the workers itself."""

    def clean_registries(self) -> None:
        """Fail abandoned jobs with a thread-safe callback guard first, then RQ's own cleanup."""
        for queue in self.queues:
            ThreadedStartedJobRegistry(queue=queue).cleanup(exception_handlers=self._exc_handlers)
        super().clean_registries()

    def execute_job(self, job: Job, queue: Queue) -> None:
        self._running = job
        try:
            super().execute_job(job, queue)
        finally:
            self._running = None

    def kill_horse(self, sig: Any = None) -> None:
        """Stop the running job (RQ's stop command): break its session so the driver call ends.

        The session is discarded, never reused in an unknown state.
        """
        job = self._running
        if job is None:
            return
        job.meta["stop_requested"] = True
        if not self.pool.interrupt(job.id):
            log.warning(
                "job %s has no session to interrupt yet; it stops when it next reads", job.id
            )


class NodeProcess:
    def __init__(
        self,
        settings: Settings,
        name: str | None = None,
        capacity: int | None = None,
        threads: int | None = None,
    ) -> None:
        self.settings = settings
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.capacity = capacity or settings.node.capacity
        self.threads = threads or settings.node.threads
        self.conn = Redis.from_url(settings.redis_url)
        self.directory = NodeDirectory(self.conn)
        self.pool = SessionPool(
            idle_timeout=settings.node.idle_timeout, probe_interval=settings.node.probe_interval
        )
        self.stop = threading.Event()
        self.workers: list[SessionWorker] = []

    def run(self) -> None:
        global CURRENT_POOL
        CURRENT_POOL = self.pool
        from netpulse.worker.pool import preload

        preload()
        self.directory.register(self.name, self.capacity, self.threads)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop.set())
        self.pool.start_probe()
        threads = [
            threading.Thread(target=self._heartbeat_loop, name="node-heartbeat", daemon=True),
            threading.Thread(target=self._watch_loop, name="node-watch", daemon=True),
        ]
        queue = node_queue(self.name)
        for index in range(self.threads):
            worker = SessionWorker(
                [queue],
                name=f"{self.name}.{index}",
                connection=Redis.from_url(self.settings.redis_url),
                pool=self.pool,
            )
            self.workers.append(worker)
            threads.append(
                threading.Thread(
                    target=worker.work,
                    # RQ logs two INFO lines per job; at hundreds of jobs a second on one
                    # process that is real CPU. Jobs are visible through the API instead.
                    kwargs={"logging_level": _rq_log_level(self.settings.log_level)},
                    name=f"rq-{index}",
                    daemon=True,
                )
            )
        for thread in threads:
            thread.start()
        log.info(
            "node %s up: capacity %d devices, %d job threads, queue %s",
            self.name,
            self.capacity,
            self.threads,
            queue,
        )
        try:
            while not self.stop.wait(0.5):
                if self.directory.is_draining(self.name) and self._drained():
                    log.info("node %s drained; exiting", self.name)
                    break
        finally:
            self.shutdown()

    def _drained(self) -> bool:
        return Queue(node_queue(self.name), connection=self.conn).count == 0 and not any(
            w._running for w in self.workers
        )

    def shutdown(self) -> None:
        for worker in self.workers:
            worker._stop_requested = True
        deadline = time.monotonic() + 30
        while any(w._running for w in self.workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.pool.close_all()
        failover.hand_over(self.conn, self.directory, self.name, self.settings)
        log.info("node %s stopped", self.name)

    def _heartbeat_loop(self) -> None:
        while not self.stop.wait(HEARTBEAT_INTERVAL):
            try:
                self.directory.heartbeat(self.name)
            except Exception:
                log.exception("node %s: heartbeat failed", self.name)

    def _watch_loop(self) -> None:
        """Find nodes that stopped beating and move their work (one node does it, by lock)."""
        while not self.stop.wait(HEARTBEAT_INTERVAL):
            try:
                for node in self.directory.nodes():
                    if not node.alive and node.name != self.name:
                        failover.recover_lost_node(
                            self.conn, self.directory, node.name, self.settings
                        )
            except Exception:
                log.exception("node %s: failover check failed", self.name)


def _rq_log_level(level: str) -> str:
    return level if level.upper() == "DEBUG" else "WARNING"


def run_node(settings: Settings, name: str | None, capacity: int | None, threads: int | None):
    NodeProcess(settings, name=name, capacity=capacity, threads=threads).run()
