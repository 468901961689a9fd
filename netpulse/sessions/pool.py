"""A pool of open device sessions held by one worker node process.

A job leases the session of its identity: it is reused when alive, opened when missing or
dead. A session that fails *during* a job is discarded and the job fails with an error that says
the command may have run: it is never silently re-sent. A background probe keeps idle sessions
alive, drops dead ones and closes those idle longer than ``idle_timeout``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from netpulse.drivers import registry as drivers
from netpulse.drivers.base import BaseDriver, DeviceConnectionError, DriverError
from netpulse.models.job import JobErrorType
from netpulse.models.request import ExecutionRequest
from netpulse.sessions.identity import session_identity

log = logging.getLogger(__name__)


class SessionLostError(DriverError):
    """The session died while a job was using it."""

    error_type = JobErrorType.SESSION_LOST


class StoppedBeforeReadError(DriverError):
    """A stop was requested while the job had no session yet (it was connecting)."""

    error_type = JobErrorType.STOPPED


@dataclass
class Session:
    key: str
    label: str
    driver: BaseDriver
    opened_at: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    jobs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    job_id: str | None = None
    #: the device's key (``BaseDriver.device_key``), what the node's device list holds
    device: str = ""


class SessionPool:
    def __init__(self, idle_timeout: float = 300.0, probe_interval: float = 30.0) -> None:
        self.idle_timeout = idle_timeout
        self.probe_interval = probe_interval
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._probe: threading.Thread | None = None
        #: Jobs asked to stop while they held no session (connecting, or between leases):
        #: their next lease fails at once instead of running the command.
        self._stopping: set[str] = set()
        self.opened = 0
        self.reused = 0

    # -- leasing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self, req: ExecutionRequest, job_id: str | None = None) -> Iterator[BaseDriver]:
        """The job's session, exclusively, for the duration of the ``with`` block."""
        key = session_identity(req)
        with self._lock:
            session = self._sessions.get(key)
        reused = False
        if session is not None:
            session.lock.acquire()
            if session.driver.is_alive():
                reused = True
            else:
                log.info("session to %s found dead; opening a new one", session.label)
                self._discard(session, locked=True, abort=True)
                session.lock.release()
                session = None
        if session is None:
            driver_class = drivers.get(req.driver)
            driver = driver_class(req.connection_args, req.driver_args)
            driver.connect()
            session = Session(
                key=key,
                label=driver.target,
                driver=driver,
                device=driver_class.device_key(req.connection_args),
            )
            session.lock.acquire()
            with self._lock:
                self._sessions[key] = session
            self.opened += 1
        else:
            self.reused += 1
        driver = session.driver
        driver.driver_args = dict(req.driver_args)
        driver.session_reused = reused
        # Under the pool's lock, as in interrupt(): a stop either finds this session leased
        # to the job, or has left its mark that is seen here.
        with self._lock:
            session.job_id = job_id
            stopped = job_id is not None and job_id in self._stopping
        try:
            if stopped:
                raise StoppedBeforeReadError(
                    f"the job was stopped while its session to {session.label} was opening"
                )
            yield driver
        except DeviceConnectionError as exc:
            self._discard(session, locked=True, abort=True)
            if reused:
                raise SessionLostError(
                    f"the session to {session.label} died while the job was running ({exc}); "
                    "the command may have reached the device and was not re-sent"
                ) from None
            raise
        except BaseException:
            # Timeout, stop or bug: the session is in an unknown state, never reuse it, and
            # never wait for it to log out politely (a device still answering the command
            # would hold the job past its timeout).
            self._discard(session, locked=True, abort=True)
            raise
        else:
            session.last_used = time.monotonic()
            session.jobs += 1
        finally:
            session.job_id = None
            session.lock.release()

    def devices(self) -> set[str]:
        """The devices this pool holds a session to (in use or idle)."""
        with self._lock:
            return {s.device for s in self._sessions.values()}

    def interrupt(self, job_id: str) -> bool:
        """Break the session a running job uses (stop requests); True if one was found.

        When the job holds no session yet (it is still connecting), the stop is remembered
        and its lease fails as soon as the connection is made, before any command is sent.
        """
        with self._lock:
            target = next((s for s in self._sessions.values() if s.job_id == job_id), None)
            if target is None:
                self._stopping.add(job_id)
        if target is None:
            return False
        log.info("closing the session to %s to stop job %s", target.label, job_id)
        target.driver.abort()
        return True

    def forget_stop(self, job_id: str) -> None:
        """The job ended: a stop mark it left (see :meth:`interrupt`) is no longer needed."""
        with self._lock:
            self._stopping.discard(job_id)

    def _discard(self, session: Session, locked: bool = False, abort: bool = False) -> None:
        """Forget the session and close it: politely (log out), or with ``abort`` at once
        (its transport closed under it) when its state is unknown."""
        with self._lock:
            if self._sessions.get(session.key) is session:
                del self._sessions[session.key]
        if abort:
            session.driver.abort()
        session.driver.disconnect()

    # -- upkeep -------------------------------------------------------------------------------

    def start_probe(self) -> None:
        self._probe = threading.Thread(target=self._probe_loop, name="session-probe", daemon=True)
        self._probe.start()

    def _probe_loop(self) -> None:
        while not self._stop.wait(self.probe_interval):
            try:
                self.probe_once()
            except Exception:
                log.exception("session probe failed")

    def probe_once(self) -> None:
        """Close idle sessions, drop dead ones, keep the others alive."""
        now = time.monotonic()
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            if not session.lock.acquire(blocking=False):
                continue  # a job is using it
            try:
                if now - session.last_used > self.idle_timeout:
                    log.info("closing session to %s (idle)", session.label)
                    self._discard(session)
                elif not session.driver.is_alive():
                    log.info("session to %s died; dropped", session.label)
                    self._discard(session)
                else:
                    session.driver.keepalive()
            finally:
                session.lock.release()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"sessions": len(self._sessions), "opened": self.opened, "reused": self.reused}

    def hosts(self) -> list[str]:
        with self._lock:
            return sorted({s.label for s in self._sessions.values()})

    def close_all(self) -> None:
        self._stop.set()
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            session.driver.disconnect()
