"""The follower (`netpulse worker detached`): looks at each running detached task every
``push_interval`` seconds, reads only the new bytes of its log, records them as
``detached.log_push`` events, and records the one final event when the task ends.

Its own process, started by `netpulse up`, rather than a part of the worker nodes: it holds a
task for seconds at a time across hours, needs no device slot of a node, and can be killed and
restarted (or run on several machines) without touching device jobs. Work is *claimed* from
the due set with a lease (:mod:`netpulse.detached.store`), so a follower that dies loses
nothing: its tasks are due again when the lease runs out. The SSH sessions to the hosts are
kept open between looks (one per host login, closed after a minute unused).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from redis import Redis

from netpulse import credentials
from netpulse.config import Settings
from netpulse.credentials import CredentialError
from netpulse.detached import events, remote, store
from netpulse.detached.store import DetachedTask, TaskStatus
from netpulse.drivers import registry as drivers
from netpulse.drivers.base import BaseDriver, DriverError
from netpulse.drivers.transfer import Shell
from netpulse.models.request import STORED, ExecutionRequest
from netpulse.runtime.outage import REDIS_OUTAGE_ERRORS, OutageLog
from netpulse.security.sealing import SealError, open_request
from netpulse.sessions.identity import session_identity

log = logging.getLogger(__name__)

#: Tasks looked at in parallel (each look is one SSH command); twice as many are claimed.
THREADS = 8
#: A host session unused this long is closed.
IDLE_SESSION_SECONDS = 60.0


@dataclass
class _Session:
    driver: BaseDriver
    lock: threading.Lock
    used_at: float
    connected: bool = False
    #: Taken out of use (closed); a lease that waited for it takes a new one.
    dropped: bool = False


class Follower:
    """One follower process's loop."""

    def __init__(self, conn: Redis, settings: Settings) -> None:
        self.conn = conn
        self.settings = settings.detached
        self.stop = threading.Event()
        self._sessions: dict[str, _Session] = {}
        self._sessions_lock = threading.Lock()
        self._outage = OutageLog(log, "detached-task follower")

    def run(self) -> None:
        """Claim due tasks while threads are free and look at each on its own thread: a
        host that is slow to answer (or to fail) holds one thread, never the others' looks."""
        log.info("detached-task follower started")
        in_flight: dict[str, Future[None]] = {}
        with ThreadPoolExecutor(THREADS, thread_name_prefix="follow") as pool:
            while not self.stop.is_set():
                try:
                    for task_id in [t for t, f in in_flight.items() if f.done()]:
                        failure = in_flight.pop(task_id).exception()
                        if failure is not None:  # only an outage gets here (visit logs others)
                            raise failure
                    room = THREADS * 2 - len(in_flight)
                    if room > 0:
                        claimed = store.claim(
                            self.conn, time.time(), self.settings.lease_seconds, room
                        )
                        for task_id in claimed:
                            if task_id not in in_flight:  # a long look: its lease ran out
                                in_flight[task_id] = pool.submit(self._visit_safely, task_id)
                    self._close_idle_sessions()
                    if room > 0:
                        self._wait()
                    else:  # every thread busy: wait for one to be free, not for a due time
                        wait(in_flight.values(), timeout=1.0, return_when=FIRST_COMPLETED)
                except REDIS_OUTAGE_ERRORS as exc:
                    self._outage.failed(exc)
                    self.stop.wait(1.0)
                    continue
                self._outage.recovered()
        self._close_all_sessions()
        log.info("detached-task follower stopped")

    def _wait(self) -> None:
        """Until the next task is due, or a new task or a kill request wakes us."""
        due = store.next_due(self.conn)
        delay = 1.0 if due is None else min(max(due - time.time(), 0.0), 1.0)
        if delay > 0:
            self.conn.blpop([store.WAKE], timeout=delay)

    # -- one look at one task -------------------------------------------------------------

    def _visit_safely(self, task_id: str) -> None:
        try:
            self.visit(task_id)
        except REDIS_OUTAGE_ERRORS:
            raise
        except Exception:
            # The task stays claimed and is looked at again when its lease runs out.
            log.exception("detached task %s: looking at it failed; trying again later", task_id)

    def visit(self, task_id: str) -> None:
        task = store.get(self.conn, task_id)
        if task is None or task.final:
            self.conn.zrem(store.DUE, task_id)
            return
        if task.pending is not None:
            self._record_pending(task)
        try:
            req = self._opened_request(task)
        except (SealError, CredentialError) as exc:
            self._finish(task, TaskStatus.FAILED, "credential_error", str(exc))
            return
        try:
            with self._session(task, req) as driver:
                shell = driver.remote_shell()
                assert shell is not None
                self._read(task, shell)
        except DriverError as exc:
            self._unreachable(task, str(exc))
        except store.TaskGone:
            log.info("detached task %s was forgotten while it was read", task_id)

    def _read(self, task: DetachedTask, shell: Shell) -> None:
        """Read the new bytes (in chunks while there are more); end the task when its
        process ended and every byte was read, or kill it when that was asked (a task that
        ended by itself first keeps its own end)."""
        while True:
            stdout, stderr, status = shell(
                remote.poll(task.task_id, task.offset, self.settings.read_chunk_bytes)
            )
            if status != 0:
                raise _HostError(f"{task.host}: the task could not be read: {stderr.strip()}")
            seen = remote.parse_poll(stdout)
            now = time.time()
            if not seen.present:
                if task.kill_requested:  # killed and removed by a follower that then died
                    self._finish(
                        task, TaskStatus.KILLED, "killed", "the task was stopped through the API"
                    )
                    return
                self._finish(
                    task,
                    TaskStatus.FAILED,
                    "task_vanished",
                    f"the task's directory on {task.host} is gone (removed on the host?)",
                )
                return
            if seen.running and task.kill_requested:
                self._kill(task, shell)
                return
            # While it runs, a character cut in two by the read waits for its other bytes:
            # every push (and every reply) holds whole UTF-8 characters.
            data = seen.data if not seen.running else seen.data[: whole_characters(seen.data)]
            if data:
                self._push(task, data, last_sync=now, unreachable_since=None)
            elif not store.update(self.conn, task.task_id, last_sync=now, unreachable_since=None):
                raise store.TaskGone(task.task_id)
            if task.offset < seen.size and len(seen.data) >= self.settings.read_chunk_bytes:
                continue  # more bytes wait: read on
            if seen.running:
                store.schedule(self.conn, task.task_id, now + task.push_interval)
                return
            if seen.exit_code is None:
                self._finish(
                    task,
                    TaskStatus.FAILED,
                    "killed",
                    "the task's process ended without an exit status (killed on the host?)",
                )
            elif seen.exit_code == 0:
                self._finish(task, TaskStatus.COMPLETED, None, None, exit_code=0)
            else:
                self._finish(
                    task,
                    TaskStatus.FAILED,
                    "exit_status",
                    f"the command exited with status {seen.exit_code}",
                    exit_code=seen.exit_code,
                )
            # Its whole log is kept (and shown) by NetPulse now: the host is left clean.
            shell(remote.remove(task.task_id))
            return

    def _push(self, task: DetachedTask, data: bytes, **fields: object) -> None:
        """The new bytes: kept and written ahead, then recorded as one event (once)."""
        task.pending = store.write_ahead(
            self.conn, task, data, self.settings.max_log_bytes, **fields
        )
        self._record_pending(task)
        task.offset += len(data)

    def _record_pending(self, task: DetachedTask) -> None:
        assert task.pending is not None
        pending = json.loads(task.pending)
        data = bytes.fromhex(pending["data"])
        if data:
            events.record(
                self.conn,
                task,
                events.push_key(task, pending["start"]),
                events.log_push(task, pending["start"], data),
            )
        store.update(self.conn, task.task_id, pending=None)
        task.pending = None

    def _kill(self, task: DetachedTask, shell: Shell) -> None:
        """Stop the process group, keep the last bytes, remove the directory, then say it
        (the task is shown ended only once nothing of it is left on the host)."""
        shell(remote.kill(task.task_id))
        try:
            self._read_rest(task, shell)
            shell(remote.remove(task.task_id))
        finally:
            self._finish(task, TaskStatus.KILLED, "killed", "the task was stopped through the API")

    def _read_rest(self, task: DetachedTask, shell: Shell) -> None:
        while True:
            stdout, _, status = shell(
                remote.poll(task.task_id, task.offset, self.settings.read_chunk_bytes)
            )
            if status != 0:
                return
            seen = remote.parse_poll(stdout)
            if not seen.data:
                return
            self._push(task, seen.data, last_sync=time.time())

    def _unreachable(self, task: DetachedTask, reason: str) -> None:
        now = time.time()
        since = task.unreachable_since or now
        if now - since >= self.settings.host_lost_seconds:
            self._finish(
                task,
                TaskStatus.FAILED,
                "host_unreachable",
                f"{task.host} could not be reached for {now - since:.0f} s: {reason}",
            )
            return
        log.warning("detached task %s: %s; trying again", task.task_id, reason)
        store.update(self.conn, task.task_id, unreachable_since=since)
        store.schedule(self.conn, task.task_id, now + task.push_interval)

    def _finish(
        self,
        task: DetachedTask,
        status: TaskStatus,
        error_type: str | None,
        message: str | None,
        exit_code: int | None = None,
    ) -> None:
        """Record the one final event, then mark the task ended (in that order: a follower
        that dies in between records the same event again, which the outbox drops)."""
        task.status = status
        task.error_type = error_type
        task.error_message = message
        task.exit_code = exit_code
        task.ended_at = time.time()
        tail, _, _ = store.read_log(self.conn, task, max(task.offset - events.FINAL_TAIL_BYTES, 0))
        events.record(self.conn, task, events.final_key(task), events.final(task, tail))
        store.ended(self.conn, task, self.settings.retention_seconds)
        log.info("detached task %s on %s: %s", task.task_id, task.host, status.value)

    # -- sessions ---------------------------------------------------------------------------

    def _opened_request(self, task: DetachedTask) -> ExecutionRequest:
        req = open_request(ExecutionRequest.model_validate_json(task.request, context=STORED))
        if req.credential is not None:
            args = credentials.fill(req.connection_args, req.credential, req.driver)
            req = req.model_copy(update={"connection_args": args})
        return req

    def _session(self, task: DetachedTask, req: ExecutionRequest) -> _Lease:
        return _Lease(self, session_identity(req), req)

    def _get_session(self, key: str, req: ExecutionRequest) -> _Session:
        with self._sessions_lock:
            session = self._sessions.get(key)
            if session is None:
                driver = drivers.get(req.driver)(req.connection_args, req.driver_args)
                session = _Session(driver, threading.Lock(), time.monotonic())
                self._sessions[key] = session
            return session

    def _forget_session(self, key: str, session: _Session) -> None:
        """Take a session out of use (its lock held by the caller) and close it."""
        with self._sessions_lock:
            if self._sessions.get(key) is session:
                del self._sessions[key]
            session.dropped = True
        try:
            session.driver.disconnect()
        except Exception as exc:  # a broken session may fail to close; it is dropped anyway
            log.debug("closing a broken session failed: %s", exc)

    def _close_idle_sessions(self) -> None:
        """Close sessions unused for a while, each only if no look holds it."""
        now = time.monotonic()
        with self._sessions_lock:
            idle = [
                (k, s) for k, s in self._sessions.items() if now - s.used_at > IDLE_SESSION_SECONDS
            ]
        for key, session in idle:
            if session.lock.acquire(blocking=False):
                try:
                    self._forget_session(key, session)
                finally:
                    session.lock.release()

    def _close_all_sessions(self) -> None:
        with self._sessions_lock:
            every = list(self._sessions.items())
        for key, session in every:
            with session.lock:
                self._forget_session(key, session)


def whole_characters(data: bytes) -> int:
    """The length of ``data`` without a UTF-8 character its end cuts in two (0 to 3 bytes
    held back); bytes that are not UTF-8 at all are never held back."""
    for back in range(1, min(3, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # not a continuation byte: the last character starts here
            needed = (
                2
                if byte >> 5 == 0b110
                else 3
                if byte >> 4 == 0b1110
                else 4
                if byte >> 3 == 0b11110
                else 1
            )
            return len(data) - back if needed > back else len(data)
    return len(data)


class _HostError(DriverError):
    """The host answered, but not as a Linux shell with the task's directory should."""


class _Lease:
    """``with`` a connected session of one host login, one look at a time. A session closed
    while this lease waited for it is replaced; a session that fails is closed (the next
    look connects again)."""

    def __init__(self, follower: Follower, key: str, req: ExecutionRequest) -> None:
        self.follower, self.key, self.req = follower, key, req

    def __enter__(self) -> BaseDriver:
        while True:
            self.session = self.follower._get_session(self.key, self.req)
            self.session.lock.acquire()
            if not self.session.dropped:
                break
            self.session.lock.release()
        driver = self.session.driver
        try:
            if not self.session.connected or not driver.is_alive():
                driver.connect()
                self.session.connected = True
        except BaseException:
            self.follower._forget_session(self.key, self.session)
            self.session.lock.release()
            raise
        return driver

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self.session.used_at = time.monotonic()
        try:
            if exc is not None:
                self.follower._forget_session(self.key, self.session)
        finally:
            self.session.lock.release()
