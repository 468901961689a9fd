"""One run of `netpulse exec` once its rows and options are checked: submit and follow with a
progress bar, settle what is left on Ctrl-C or ``--wait``, write the result file, sum up.

The main thread only draws (every :data:`TICK`) and reacts to Ctrl-C; the network is the
submitter's and the watchers' (:mod:`~netpulse.cli.bulk_follow`). Ctrl-C is caught as a
flag rather than an exception, so it can never cut a request in half: a bulk request in
flight is answered, and its jobs are then known and cancelled. A second Ctrl-C raises
``KeyboardInterrupt`` as usual, which stops the cancelling but not the writing of the
result file.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from netpulse.cli import bulk_follow
from netpulse.cli.bulk_api import Api
from netpulse.cli.bulk_board import Board, Counts, Outcome
from netpulse.cli.bulk_report import (
    EXIT_BAD_INPUT,
    EXIT_NOT_OK,
    EXIT_OK,
    Redactor,
    error_of,
    write_result,
)
from netpulse.cli.bulk_request import JobSpec, chunks
from netpulse.cli.bulk_rows import DeviceFile

#: Seconds between two redraws of the progress bar (the board is read each time).
TICK = 0.25
#: Rows that did not succeed, listed on the console after the run (all are in the file).
SHOWN_FAILURES = 10


@dataclass(frozen=True)
class Target:
    """The API: its URL, the key, and the header the key goes in."""

    url: str
    api_key: str = ""
    header: str = "X-API-KEY"


@dataclass
class Ending:
    """How following stopped."""

    interrupted: bool = False
    timed_out: bool = False
    cancelled: int = 0


def run(
    spec: JobSpec,
    device_file: DeviceFile,
    target: Target,
    chunk_size: int,
    output: Path,
    wait: float,
    redact: Redactor,
) -> int:
    """Submit, follow, settle and write; the exit status (0, 1, or 2, see bulk.py)."""
    # soft_wrap: a line a script greps for is never cut in two on a pipe's 80 columns.
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    out = Console(highlight=False, soft_wrap=True)
    board = Board(device_file.rows)
    by_row = dict(zip(device_file.rows, board.outcomes, strict=True))
    requests = [[by_row[r] for r in chunk] for chunk in chunks(device_file.rows, chunk_size)]
    skipped = f" ({device_file.skipped} not selected)" if device_file.skipped else ""
    err.print(
        f"{len(device_file.rows)} devices{skipped} in {len(requests)} bulk requests to "
        f"{escape(target.url)}"
    )
    api = Api(target.url, target.api_key, target.header, 2 * bulk_follow.WATCHERS + 2)
    submission = bulk_follow.Submission()
    try:
        ending = _follow(api, spec, board, requests, submission, wait, err)
        why = "interrupted" if ending.interrupted else f"--wait {wait:g} s passed"
        board.not_ended(why)
        outcomes = board.snapshot()
    finally:
        api.close()
    path = write_result(output, outcomes, _sent_lines(spec), redact)
    _sum_up(out, outcomes, ending, path, redact)
    if ending.interrupted or any(not o.ok for o in outcomes):
        nothing_queued = all(o.job_id is None for o in outcomes)
        refused_as_invalid = submission.refused_status == 422 and nothing_queued
        return EXIT_BAD_INPUT if refused_as_invalid else EXIT_NOT_OK
    return EXIT_OK


def _follow(
    api: Api,
    spec: JobSpec,
    board: Board,
    requests: list[list[Outcome]],
    submission: bulk_follow.Submission,
    wait: float,
    err: Console,
) -> Ending:
    """Run the submitter and the watchers, draw until every row is settled, ``wait`` has
    passed or Ctrl-C; then stop them and settle (cancel, on Ctrl-C) what did not end."""
    ending = Ending()
    stop, interrupted = threading.Event(), threading.Event()
    deadline = time.monotonic() + wait
    submitter = threading.Thread(
        target=bulk_follow.submit_all,
        args=(api, spec, requests, board, stop, submission),
        daemon=True,
        name="submit",
    )

    def on_interrupt(signum: int, frame: Any) -> None:
        interrupted.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the second one raises

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        submitter.start()
        bulk_follow.start_watchers(api, board, deadline)
        with _progress(err) as progress:
            task = progress.add_task("jobs", total=len(board.outcomes), counts="")
            while True:
                _draw(progress, task, board.counts(), board.note)
                if board.over() or interrupted.is_set():
                    break
                if time.monotonic() >= deadline:
                    ending.timed_out = True
                    submission.stop_reason = f"--wait {wait:g} s passed before it was submitted"
                    break
                interrupted.wait(TICK)
        ending.interrupted = interrupted.is_set()
        stop.set()
        if ending.interrupted:
            err.print("interrupted: cancelling the jobs still queued (Ctrl-C again to stop)")
        # The reply of a request in flight names jobs to cancel or to ask about.
        submitter.join(timeout=bulk_follow.POLL_WAIT + 60)
        board.stop()
        if ending.interrupted or ending.timed_out:
            ending.cancelled = bulk_follow.settle(api, board, cancel=ending.interrupted)
    except KeyboardInterrupt:
        ending.interrupted = True
        err.print("stopped: the result file holds what is known so far")
    finally:
        signal.signal(signal.SIGINT, previous)
        stop.set()
        board.stop()
    return ending


def _progress(console: Console) -> Progress:
    # Redrawn by the main loop only (auto_refresh off): a bar that moves is a loop that runs.
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=console,
        auto_refresh=False,
    )


def _draw(progress: Progress, task: Any, counts: Counts, note: str | None) -> None:
    text = (
        f"[green]done {counts.done}[/green] [red]failed {counts.failed}[/red] "
        f"queued {counts.queued}"
    )
    if counts.unsent:
        text += f" to submit {counts.unsent}"
    if note:
        text += f" [yellow]{escape(note)}[/yellow]"
    progress.update(
        task,
        completed=counts.ended,
        description="submitting" if counts.unsent else "jobs",
        counts=text,
        refresh=True,
    )


def _sum_up(
    out: Console, outcomes: list[Outcome], ending: Ending, path: Path, redact: Redactor
) -> None:
    ok = sum(o.ok for o in outcomes)
    failed = [o for o in outcomes if not o.ok]
    out.print(
        f"{len(outcomes)} devices: [green]{ok} ok[/green], "
        f"[{'red' if failed else 'green'}]{len(failed)} not ok[/]"
        + (f"; {ending.cancelled} queued jobs cancelled" if ending.cancelled else "")
    )
    for outcome in failed[:SHOWN_FAILURES]:
        out.print(
            f"  row {outcome.row.number} {escape(outcome.row.device)}: {escape(outcome.status)}"
            f" {escape(redact(error_of(outcome)))}"
        )
    if len(failed) > SHOWN_FAILURES:
        out.print(f"  ... and {len(failed) - SHOWN_FAILURES} more in the result file")
    out.print(f"result: {escape(str(path))}")


def _sent_lines(spec: JobSpec) -> list[str]:
    return spec.payload if isinstance(spec.payload, list) else []
