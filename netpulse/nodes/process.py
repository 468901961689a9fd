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

from rq import Queue, SimpleWorker
from rq.job import Job
from rq.timeouts import TimerDeathPenalty
from rq.utils import now

from netpulse.config import Settings
from netpulse.nodes import failover
from netpulse.nodes.bookkeeping import IdleDevices
from netpulse.nodes.directory import HEARTBEAT_INTERVAL, HEARTBEAT_TTL, NodeDirectory, node_queue
from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS, OutageLog, wait_for_redis
from netpulse.runtime.processes import process_gone
from netpulse.runtime.redis_conn import connect
from netpulse.sessions.pool import SessionPool
from netpulse.templates import sandbox
from netpulse.worker import task
from netpulse.worker.pool import preload
from netpulse.worker.registries import ThreadedStartedJobRegistry
from netpulse.worker.rq_worker import JobEndPublisher, OutcomeKeeper, PromptUnsubscribe
from netpulse.worker.start import OneTripStart
from netpulse.worker.stranded import StrandedJobs
from netpulse.worker.success import OneTripSuccess

log = logging.getLogger(__name__)

#: Seconds between a node thread's own RQ heartbeats (RQ would send one per job).
HEARTBEAT_EVERY = 5.0

#: Seconds between a node thread's checks for ``rq suspend`` (RQ checks before every job: one
#: round trip per job for a flag an operator sets by hand, so a suspension takes effect within
#: this time instead of at the next job).
SUSPENSION_CHECK_EVERY = 1.0


class SessionWorker(
    PromptUnsubscribe, JobEndPublisher, OneTripSuccess, OutcomeKeeper, OneTripStart, SimpleWorker
):
    """An RQ worker running in a thread of a node process."""

    death_penalty_class = TimerDeathPenalty
    #: The state last written to Redis (``set_state``).
    _state_written: str | None = None

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

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """Each state is written once per change: RQ's loop sets ``idle`` again before every
        wait, after the job's outcome transaction wrote it (``OneTripSuccess``)."""
        if pipeline is None and state == self._state_written:
            self._state = state
            return
        super().set_state(state, pipeline)
        self._state_written = state

    def check_for_suspension(self, burst: bool) -> None:
        last = getattr(self, "_suspension_checked", None)
        if last is not None and time.monotonic() - last < SUSPENSION_CHECK_EVERY:
            return
        self._suspension_checked = time.monotonic()
        super().check_for_suspension(burst)

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        """RQ writes the job's ``last_heartbeat`` here in a round trip of its own; the final
        state's transaction (``handle_job_success`` / the failed registry) saves the whole job,
        that field included, moments later. The started registry is not touched by either:
        the execution's entry was given the job's timeout + 60 s when it started, which
        outlasts the end-of-job callbacks (bounded at 10 s)."""
        job.ended_at = now()
        job.last_heartbeat = job.ended_at

    def _install_signal_handlers(self) -> None:
        """Signals belong to the node's main thread, which stops the workers itself."""

    def clean_registries(self) -> None:
        """Fail abandoned jobs with a thread-safe callback guard first, then RQ's own cleanup."""
        for queue in self.queues:
            ThreadedStartedJobRegistry(queue=queue).cleanup(exception_handlers=self._exc_handlers)
        super().clean_registries()

    def execute_job(self, job: Job, queue: Queue) -> None:
        """RQ's ``SimpleWorker.execute_job`` without its closing ``set_state(IDLE)``: the
        work loop sets the state to idle again before it waits for the next job, so that
        write was a second round trip per job for the same field."""
        self._running = job
        try:
            execution = self.prepare_execution(job)
            self.perform_job(job, queue, execution)
        finally:
            self._running = None
            self.pool.forget_stop(job.id)

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
                "job %s has no session to interrupt yet (connecting); it stops as soon as the "
                "connection is made, before any command is sent",
                job.id,
            )


class NodeNameInUse(RuntimeError):
    """Another live process runs a node of the same name."""


class NodeProcess:
    """One worker node: job threads, a session pool, a heartbeat and a watch on the others.

    Every process gets a fresh instance id (its boot id); the node's name is what devices are
    assigned to and stays the same across restarts. A node that starts under a name whose
    previous process died first recovers what that life left (:meth:`_recover_previous_life`)
    instead of being taken for the same process because "the same name beats again".
    """

    def __init__(
        self,
        settings: Settings,
        name: str | None = None,
        capacity: int | None = None,
        threads: int | None = None,
    ) -> None:
        self.settings = settings
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.instance = uuid.uuid4().hex[:12]
        self.capacity = capacity or settings.node.capacity
        self.threads = threads or settings.node.threads
        self.conn = connect(settings.redis_url)
        self.directory = NodeDirectory(self.conn)
        self.pool = SessionPool(
            idle_timeout=settings.node.idle_timeout, probe_interval=settings.node.probe_interval
        )
        self.stop = threading.Event()
        self.workers: list[SessionWorker] = []
        self._outage = OutageLog(log, f"node {self.name}")
        #: Until then a missing heartbeat of another node may only mean Redis was away (every
        #: heartbeat key can expire during an outage): no failover before it.
        self._trust_heartbeats_at = time.monotonic() + HEARTBEAT_TTL + HEARTBEAT_INTERVAL
        self.stranded = StrandedJobs(self.conn, node_queue(self.name))
        self.idle_devices = IdleDevices(
            self.conn,
            self.directory,
            self.name,
            self.pool.devices,
            settings.node.device_release_seconds,
        )
        # Job threads share one process: a template regex that never ends would hold them all
        # (the GIL), so a job's parsing runs in the process's template sandbox (task.py).
        self.sandbox = sandbox.shared(settings)

    def run(self) -> None:
        task.use_session_pool(self.pool)
        preload()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop.set())
        if not wait_for_redis(self.conn.ping, self._outage, self.stop):
            return
        self._claim_name()
        self._recover_previous_life()
        self.directory.register(self.name, self.capacity, self.threads, self.instance)
        self.pool.start_probe()
        threads = [
            threading.Thread(target=self._heartbeat_loop, name="node-heartbeat", daemon=True),
            threading.Thread(target=self._watch_loop, name="node-watch", daemon=True),
        ]
        queue = node_queue(self.name)
        for index in range(self.threads):
            self.workers.append(self._new_worker(index))
            threads.append(
                threading.Thread(target=self._serve, args=(index,), name=f"rq-{index}", daemon=True)
            )
        for thread in threads:
            thread.start()
        log.info(
            "node %s (instance %s) up: capacity %d devices, %d job threads, queue %s",
            self.name,
            self.instance,
            self.capacity,
            self.threads,
            queue,
        )
        try:
            while not self.stop.wait(0.5):
                try:
                    draining = self.directory.is_draining(self.name) and self._drained()
                except REDIS_OUTAGE_ERRORS as exc:
                    self._outage.failed(exc)
                    continue
                if draining:
                    log.info("node %s drained; exiting", self.name)
                    break
        finally:
            self.shutdown()

    # -- job threads ------------------------------------------------------------------------------

    def _new_worker(self, index: int) -> SessionWorker:
        return SessionWorker(
            [node_queue(self.name)],
            name=f"{self.name}.{index}",
            connection=connect(self.settings.redis_url),
            pool=self.pool,
        )

    def _serve(self, index: int) -> None:
        """One job thread: RQ's loop, started again after a Redis outage ends it."""
        from netpulse.worker.serving import serve

        first = [True]

        def make_worker() -> SessionWorker:
            if first[0]:
                first[0] = False
                return self.workers[index]
            return self._new_worker(index)

        def keep(worker: SessionWorker) -> None:
            self.workers[index] = worker

        serve(
            make_worker,
            self.workers[index].connection,
            stopping=self.stop.is_set,
            on_worker=keep,
            # RQ logs two INFO lines per job; at hundreds of jobs a second on one process
            # that is real CPU. Jobs are visible through the API instead.
            logging_level=_rq_log_level(self.settings.log_level),
        )

    def _drained(self) -> bool:
        return Queue(node_queue(self.name), connection=self.conn).count == 0 and not any(
            w._running for w in self.workers
        )

    # -- identity and recovery ----------------------------------------------------------------

    def _claim_name(self) -> None:
        """Make sure no other live process runs a node of this name.

        A previous process of this host that no longer exists is dead for sure; one on another
        host (or a live pid) is given the heartbeat's lifetime to stop beating."""
        previous = self.directory.registration(self.name)
        if previous is None or not self.directory.beating_instance(self.name):
            return
        if previous.hostname == socket.gethostname() and process_gone(previous.pid):
            log.warning(
                "node %s: the previous process (pid %d) is gone; taking over its name",
                self.name,
                previous.pid,
            )
            return
        deadline = time.monotonic() + HEARTBEAT_TTL + HEARTBEAT_INTERVAL
        while time.monotonic() < deadline:
            if not self.directory.beating_instance(self.name):
                return
            if self.stop.wait(0.5):
                return
        beating = self.directory.beating_instance(self.name)
        if beating:
            raise NodeNameInUse(
                f"a worker node named {self.name!r} is already running (host "
                f"{previous.hostname}, pid {previous.pid}, instance {beating}); give this one "
                "another --name, or stop the other first"
            )

    def _recover_previous_life(self) -> None:
        """End what a previous process of this name left behind: jobs it held ``started``
        fail with ``node_lost`` (one ``job.failed`` each), their devices' rate-limit slots
        are released and the waiting jobs promoted; the queue is then served again."""
        with failover.failover_lock(self.conn, self.name) as acquired:
            if not acquired:
                log.warning(
                    "node %s: another node is failing this name over; waiting for it", self.name
                )
                failover.wait_for_failover(self.conn, self.name, self.stop)
                return
            failed = failover.fail_running_jobs(
                self.conn,
                self.name,
                message=(
                    f"worker node {self.name} stopped while running the job (its process "
                    "died and was started again)"
                ),
            )
            released = failover.release_device_slots(self.conn, self.directory, self.name)
        if failed or released:
            log.warning(
                "node %s: recovered its previous life: %d running job(s) failed (node_lost), "
                "%d waiting job(s) of its devices released",
                self.name,
                len(failed),
                released,
            )

    # -- stopping -------------------------------------------------------------------------------

    def shutdown(self) -> None:
        for worker in self.workers:
            worker._stop_requested = True
        deadline = time.monotonic() + 30
        while any(w._running for w in self.workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.pool.close_all()
        self.sandbox.close()
        try:
            failover.hand_over(self.conn, self.directory, self.name, self.settings)
        except REDIS_OUTAGE_ERRORS as exc:
            log.error(
                "node %s: Redis unreachable while stopping (%s); its devices stay assigned to "
                "it until another node fails it over or it starts again",
                self.name,
                exc,
            )
        log.info("node %s stopped", self.name)

    # -- background loops -----------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        while not self.stop.wait(HEARTBEAT_INTERVAL):
            try:
                if not self.directory.heartbeat(self.name, self.instance):
                    log.error(
                        "node %s: its registration was missing (Redis lost its data, or the "
                        "node was taken for lost): jobs and deliveries stored before that are "
                        "gone; registering again",
                        self.name,
                    )
                    self.directory.register(self.name, self.capacity, self.threads, self.instance)
            except REDIS_OUTAGE_ERRORS as exc:
                self._outage.failed(exc)
                self._trust_heartbeats_at = time.monotonic() + HEARTBEAT_TTL + HEARTBEAT_INTERVAL
                continue
            except Exception:
                log.exception("node %s: heartbeat failed", self.name)
                continue
            self._outage.recovered()

    def _watch_loop(self) -> None:
        """Find nodes that stopped beating and move their work (one node does it, by lock);
        put back the jobs of this node's queue that a worker took but never started."""
        while not self.stop.wait(HEARTBEAT_INTERVAL):
            try:
                self.stranded.sweep()
                self.idle_devices.sweep()
            except REDIS_OUTAGE_ERRORS as exc:
                self._outage.failed(exc)
                continue
            except Exception:
                log.exception(
                    "node %s: looking for stranded jobs or idle devices failed", self.name
                )
            if time.monotonic() < self._trust_heartbeats_at:
                continue
            try:
                for node in self.directory.nodes():
                    if not node.alive and node.name != self.name:
                        failover.recover_lost_node(
                            self.conn, self.directory, node.name, self.settings
                        )
            except REDIS_OUTAGE_ERRORS as exc:
                self._outage.failed(exc)
            except Exception:
                log.exception("node %s: failover check failed", self.name)


def _rq_log_level(level: str) -> str:
    return level if level.upper() == "DEBUG" else "WARNING"


def run_node(settings: Settings, name: str | None, capacity: int | None, threads: int | None):
    NodeProcess(settings, name=name, capacity=capacity, threads=threads).run()
