"""Run the rows of `netpulse exec`: submit them in chunks, watch their jobs, and at the end
(every job ended, ``--wait`` passed, or Ctrl-C) settle what is left.

Threads, so that the progress bar (the main thread) never waits on the network:

* one submitter sends the chunks one after another (:func:`submit_all`);
* :data:`WATCHERS` watchers each long-poll one job at a time with ``GET /jobs/{id}?wait=``
  (:func:`watch`), which the server answers the moment the job ends. The board chooses the
  job (the oldest not ended), so requests grow with the number of jobs that end, not with
  jobs times seconds: 1,000 queued jobs cost nothing while they wait.

Ctrl-C (:func:`settle` with ``cancel``) asks about every job not ended once more and cancels
those still queued (``DELETE /jobs/{id}``); running jobs are left to finish (cancelling a
running job would stop it half-way, which is not what "cancel what has not run" means).
A job that starts between the question and the cancel is stopped by the server: the window
is one round trip.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from netpulse.cli.bulk_api import Api, ControllerUnreachable
from netpulse.cli.bulk_board import FINAL, Board, Outcome
from netpulse.cli.bulk_request import JobSpec

#: Jobs watched at once (each an open long poll on the controller).
WATCHERS = 8
#: Seconds the server may hold one long poll.
POLL_WAIT = 5.0
#: Pause after the controller did not answer a poll (s).
RETRY_PAUSE = 1.0


class Submission:
    """How the submission went, for the exit code and the summary."""

    def __init__(self) -> None:
        #: Status and reason of a request refused as a whole (4xx), if one was.
        self.refused_status: int | None = None
        self.refused_reason: str | None = None
        self.requests = 0
        #: Why the rows not yet sent were left out when the run is stopped.
        self.stop_reason = "interrupted before it was submitted"


def submit_all(
    api: Api,
    spec: JobSpec,
    chunks: list[list[Outcome]],
    board: Board,
    stop: threading.Event,
    submission: Submission,
) -> None:
    """Send each chunk and record every row's fate; stops after a refused request (its
    reason, a bad shared option or key, would refuse every other) or when ``stop`` is set."""
    try:
        for index, chunk in enumerate(chunks):
            if stop.is_set():
                break
            try:
                reply = api.submit(spec.body([o.row for o in chunk]), stop)
                if reply.status == 201 and not isinstance(reply.body, dict):
                    raise ControllerUnreachable(
                        f"HTTP 201 without a JSON object: {reply.body!r:.80}"
                    )
            except ControllerUnreachable as exc:
                for outcome in chunk:
                    board.not_sent(
                        outcome,
                        f"the controller did not answer ({exc}); whether it was queued is "
                        "unknown: look for it with GET /jobs?host=",
                    )
                board.note = f"controller unreachable: {exc}"
                _give_up(board, chunks[index + 1 :], "an earlier request got no answer")
                return
            submission.requests += 1
            if reply.status != 201:
                submission.refused_status, submission.refused_reason = reply.status, reply.detail
                for outcome in chunk:
                    board.refused(outcome, f"HTTP {reply.status}: {reply.detail}")
                _give_up(
                    board, chunks[index + 1 :], f"the server refused a request ({reply.detail})"
                )
                return
            _record(board, chunk, reply.body)
        else:
            return
        _give_up(board, chunks[index:], submission.stop_reason)
    finally:
        board.submission_over()


def _record(board: Board, chunk: list[Outcome], body: dict) -> None:
    """Match the reply to the rows: hosts are unique within a chunk (bulk_request), so a
    refusal names its row, and the queued jobs follow the other rows in order."""
    refusals = {str(f.get("host")): str(f.get("reason")) for f in body.get("failed") or []}
    jobs = iter(body.get("succeeded") or [])
    for outcome in chunk:
        if outcome.row.host in refusals:
            board.refused(outcome, refusals[outcome.row.host])
            continue
        job = next(jobs, None)
        if job is None:
            board.refused(outcome, "the server's reply has no job for this device")
        else:
            board.queued(outcome, job)


def _give_up(board: Board, chunks: list[list[Outcome]], reason: str) -> None:
    for chunk in chunks:
        for outcome in chunk:
            if outcome.job_id is None and outcome.error is None:
                board.not_sent(outcome, reason)


def watch(api: Api, board: Board, deadline: float) -> None:
    """One watcher: long-poll the board's next job until the board says it is over."""
    while True:
        job_id = board.take()
        if job_id is None:
            if board.watching_over():
                return
            continue
        wait = max(0.0, min(POLL_WAIT, deadline - time.monotonic()))
        try:
            reply = api.job(job_id, wait)
        except Exception as exc:  # a watcher must never die holding a job
            board.note = f"controller unreachable: {type(exc).__name__}"
            board.ask_later(job_id, RETRY_PAUSE)
            continue
        board.note = None
        if reply.status == 200 and isinstance(reply.body, dict):
            board.observe(job_id, reply.body)
        elif reply.status == 404:
            board.unknown(job_id, f"unknown: the server does not know the job ({reply.detail})")
        else:
            board.unknown(job_id, f"unknown: HTTP {reply.status}: {reply.detail}")


def start_watchers(api: Api, board: Board, deadline: float) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=watch, args=(api, board, deadline), daemon=True, name=f"watch-{i}")
        for i in range(WATCHERS)
    ]
    for thread in threads:
        thread.start()
    return threads


def settle(api: Api, board: Board, cancel: bool) -> int:
    """Ask once more about every job not ended; with ``cancel``, cancel the queued ones.
    Returns how many were cancelled."""
    cancelled = 0
    lock = threading.Lock()

    def one(job_id: str) -> None:
        nonlocal cancelled
        try:
            reply = api.job(job_id, 0)
            if reply.status != 200:
                board.unknown(job_id, f"unknown: HTTP {reply.status}: {reply.detail}")
                return
            if reply.body.get("status") in FINAL or not cancel:
                board.observe(job_id, reply.body)
                return
            if reply.body.get("status") != "queued":
                board.observe(job_id, reply.body)  # running: left to finish
                return
            done = api.cancel(job_id)
            if done.status == 200:
                board.cancelled(job_id, "canceled by netpulse exec (interrupted) before it ran")
                with lock:
                    cancelled += 1
            else:  # 409: it ended in between; record how
                again = api.job(job_id, 0)
                if again.status == 200:
                    board.observe(job_id, again.body)
        except httpx.HTTPError as exc:
            board.note = f"controller unreachable: {type(exc).__name__}"

    with ThreadPoolExecutor(WATCHERS, thread_name_prefix="settle") as pool:
        list(pool.map(one, board.pending()))
    return cancelled
