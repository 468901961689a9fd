"""What `netpulse exec` knows about each row while it runs: the board the submitter, the
job watchers, the progress bar and the result file share.

Every row has one :class:`Outcome` from the start, so no row can go missing: it is
``not submitted`` until its request is answered, then ``refused`` (with the server's
reason) or the job's status, and it ends when the job does (or is unknown to the server).

Which job to ask about next (:meth:`Board.take`): the oldest not yet ended, since jobs end
roughly in the order they were queued. A job still running when asked (the server waited
``wait`` seconds for it) is asked again only after a pause that doubles up to
:data:`RECHECK_MAX`, so that a few slow jobs at the head of the line do not keep every
watcher busy while later jobs end unseen. The number of requests is thus bounded by the
watchers, not by the number of jobs: one per job end, plus at most one per watcher per wait
while nothing ends.

A final status is never overwritten: a late answer of a watcher cannot undo what the
cancel sweep recorded.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from netpulse.cli.bulk_rows import DeviceRow

#: Job statuses after which nothing changes (those of the API).
FINAL = frozenset({"finished", "failed", "stopped", "canceled"})
#: Our own statuses for rows without a job, or whose job the server no longer knows.
NOT_SUBMITTED = "not submitted"
REFUSED = "refused"
UNKNOWN = "unknown"
#: Seconds before a job found still running is asked about again: doubled per miss.
RECHECK_FIRST = 1.0
RECHECK_MAX = 8.0


@dataclass
class Outcome:
    """One row and what became of it."""

    row: DeviceRow
    status: str = NOT_SUBMITTED
    job_id: str | None = None
    #: The job as the API last showed it (``JobInResponse``).
    job: dict[str, Any] | None = None
    #: Why it did not succeed, when that is not in the job: ``type: message``.
    error: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in FINAL or self.status in (REFUSED, UNKNOWN)

    @property
    def ok(self) -> bool:
        """The public client's rule: finished, result type 1, every exit status 0."""
        if self.status != "finished" or self.job is None:
            return False
        result = self.job.get("result") or {}
        items = result.get("retval") or []
        return result.get("type") == 1 and all(i.get("exit_status") == 0 for i in items)


@dataclass(frozen=True)
class Counts:
    """What the progress bar shows. ``queued`` is every job submitted and not ended, running
    or not: a long poll answers when a job ends, so when it starts is not known (and asking
    would cost a request per job)."""

    total: int
    done: int = 0
    failed: int = 0
    queued: int = 0
    unsent: int = 0

    @property
    def ended(self) -> int:
        return self.done + self.failed


@dataclass
class _Watch:
    outcome: Outcome
    next_check: float = 0.0
    misses: int = 0
    in_flight: bool = False


@dataclass
class Board:
    """The outcomes of every row, and the jobs still to watch (in submission order)."""

    rows: list[DeviceRow]
    outcomes: list[Outcome] = field(init=False)
    #: A passing problem to show beside the progress bar (the controller did not answer).
    note: str | None = None

    def __post_init__(self) -> None:
        self.outcomes = [Outcome(row) for row in self.rows]
        self._cond = threading.Condition()
        self._watches: dict[str, _Watch] = {}
        self._submitting = True
        self._stopped = False

    # -- submission --------------------------------------------------------------------------

    def queued(self, outcome: Outcome, job: dict[str, Any]) -> None:
        """The server queued the row's job (``job`` as in the bulk reply)."""
        with self._cond:
            outcome.job_id = str(job["id"])
            self._apply(outcome, job)
            if not outcome.ended:
                self._watches[outcome.job_id] = _Watch(outcome)
            self._cond.notify_all()

    def refused(self, outcome: Outcome, reason: str) -> None:
        with self._cond:
            outcome.status, outcome.error = REFUSED, f"refused: {reason}"

    def not_sent(self, outcome: Outcome, reason: str) -> None:
        with self._cond:
            outcome.error = f"not submitted: {reason}"

    def submission_over(self) -> None:
        with self._cond:
            self._submitting = False
            self._cond.notify_all()

    # -- watching ----------------------------------------------------------------------------

    def take(self, timeout: float = 0.5) -> str | None:
        """The next job to ask about (marked as being asked), or None when there is none
        right now (``timeout`` passed) or ever again (:meth:`over`)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._watching_over():
                now = time.monotonic()
                soonest = deadline
                for job_id, watch in self._watches.items():
                    if watch.in_flight:
                        continue
                    if watch.next_check <= now:
                        watch.in_flight = True
                        return job_id
                    soonest = min(soonest, watch.next_check)
                if now >= deadline:
                    return None
                self._cond.wait(max(soonest - now, 0.01))
            return None

    def observe(self, job_id: str, job: dict[str, Any]) -> None:
        """An answer about the job: recorded; asked again later unless it ended."""
        with self._cond:
            watch = self._watches.get(job_id)
            if watch is None:
                return
            self._apply(watch.outcome, job)
            if watch.outcome.ended:
                del self._watches[job_id]
            else:
                watch.misses += 1
                watch.in_flight = False
                pause = min(RECHECK_FIRST * 2 ** (watch.misses - 1), RECHECK_MAX)
                watch.next_check = time.monotonic() + pause
            self._cond.notify_all()

    def unknown(self, job_id: str, why: str) -> None:
        """The server does not know the job (any more), or will not show it."""
        with self._cond:
            watch = self._watches.pop(job_id, None)
            if watch is not None and not watch.outcome.ended:
                watch.outcome.status, watch.outcome.error = UNKNOWN, why
            self._cond.notify_all()

    def ask_later(self, job_id: str, pause: float) -> None:
        """Asking failed (the controller did not answer): try again after ``pause``."""
        with self._cond:
            watch = self._watches.get(job_id)
            if watch is not None:
                watch.in_flight = False
                watch.next_check = time.monotonic() + pause
            self._cond.notify_all()

    def cancelled(self, job_id: str, message: str) -> None:
        """We cancelled the job before it ran."""
        self.observe(
            job_id,
            {
                "id": job_id,
                "status": "canceled",
                "result": {
                    "type": 3,
                    "retval": None,
                    "error": {"type": "canceled", "message": message},
                },
            },
        )

    def stop(self) -> None:
        """No more watching: :meth:`take` answers None from now on."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _watching_over(self) -> bool:
        return self._stopped or (not self._submitting and not self._watches)

    def watching_over(self) -> bool:
        """Whether watchers may leave: stopped, or every job ended."""
        with self._cond:
            return self._watching_over()

    def over(self) -> bool:
        """Every row is settled: nothing left to submit and every job ended."""
        with self._cond:
            return not self._submitting and not self._watches

    def not_ended(self, why: str) -> None:
        """Say, for each job that did not end, that it was left to run (its status stays
        the last one seen)."""
        with self._cond:
            for outcome in self.outcomes:
                if outcome.job_id is not None and not outcome.ended and outcome.error is None:
                    state = "running" if outcome.status == "started" else outcome.status
                    outcome.error = (
                        f"not ended: still {state} when netpulse exec stopped following "
                        f"({why}); left to run"
                    )

    def pending(self) -> list[str]:
        """The jobs not ended, in submission order."""
        with self._cond:
            return list(self._watches)

    # -- reading -----------------------------------------------------------------------------

    def counts(self) -> Counts:
        with self._cond:
            done = failed = queued = unsent = 0
            for outcome in self.outcomes:
                if outcome.ended:
                    done, failed = (done + 1, failed) if outcome.ok else (done, failed + 1)
                elif outcome.job_id is None:
                    unsent += 1
                else:
                    queued += 1
            return Counts(len(self.outcomes), done, failed, queued, unsent)

    def snapshot(self) -> list[Outcome]:
        """Copies of the outcomes, safe to read while watchers still answer."""
        with self._cond:
            return [replace(o) for o in self.outcomes]

    @staticmethod
    def _apply(outcome: Outcome, job: dict[str, Any]) -> None:
        if outcome.ended:
            return  # final is final
        outcome.job = job
        outcome.status = str(job.get("status") or "queued")
