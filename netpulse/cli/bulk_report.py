"""The result file of `netpulse exec`, and the words it and the console use for each row.

``result_<timestamp>.csv``: one line per submitted row, in file order, with ``row`` (its row
in the device file), ``device`` (``host:port``), ``status``, ``job id``, for each command its
exit status and first output line, and ``error`` (``type: message``).

What must stay true: no password is ever written or printed. The server never returns one,
but device output and error messages are free text, so every text passes through a
:class:`Redactor` that knows each password and secret the run read (and the API key) and
masks them wherever they appear.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from netpulse.cli.bulk_board import Outcome

#: Exit statuses of `netpulse exec`: every row succeeded; not; bad input (nothing ran).
EXIT_OK, EXIT_NOT_OK, EXIT_BAD_INPUT = 0, 1, 2

MASK = "***"
#: Cells a spreadsheet would run as a formula; written with a leading quote.
FORMULA_START = ("=", "+", "@", "\t", "\r")


class Redactor:
    """Masks every secret of the run in a text (longest first, so none leaves a tail)."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        known = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in known)) if known else None

    def __call__(self, text: str | None) -> str:
        if not text:
            return ""
        return self._pattern.sub(MASK, text) if self._pattern else text


def commands_of(outcomes: list[Outcome], sent: list[str]) -> list[tuple[str, int]]:
    """The result file's commands: those the jobs ran, in order of first appearance (a
    rendered or config job names its own), else the lines sent. A command given twice is
    (command, 1), (command, 2)."""
    seen: list[tuple[str, int]] = []
    for outcome in outcomes:
        for key in _keys(_items(outcome)):
            if key not in seen:
                seen.append(key)
    if seen:
        return seen
    return _keys([{"command": line} for line in sent])


def _items(outcome: Outcome) -> list[dict[str, Any]]:
    result = (outcome.job or {}).get("result") or {}
    return list(result.get("retval") or [])


def _keys(items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    counted: dict[str, int] = {}
    keys = []
    for item in items:
        command = str(item.get("command", ""))
        counted[command] = counted.get(command, 0) + 1
        keys.append((command, counted[command]))
    return keys


def first_line(text: str | None) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def error_of(outcome: Outcome) -> str:
    """``type: message``: ours (refused, not submitted, unknown), the job's error, or the
    first command that did not exit 0."""
    if outcome.error:
        return outcome.error
    result = (outcome.job or {}).get("result") or {}
    error = result.get("error")
    if isinstance(error, dict):
        return f"{error.get('type')}: {error.get('message')}"
    for item in result.get("retval") or []:
        if item.get("exit_status") != 0:
            why = first_line(item.get("stderr")) or first_line(item.get("stdout"))
            return f"exit_status: {item.get('command')!r} exited {item.get('exit_status')}: {why}"
    return ""


def header(commands: list[tuple[str, int]]) -> list[str]:
    columns = ["row", "device", "status", "job id"]
    for command, nth in commands:
        name = " ".join(command.split()) + (f" ({nth})" if nth > 1 else "")
        columns += [f"{name}: exit", f"{name}: output"]
    return [*columns, "error"]


def line(outcome: Outcome, commands: list[tuple[str, int]], redact: Redactor) -> list[str]:
    items = dict(zip(_keys(_items(outcome)), _items(outcome), strict=True))
    cells = [str(outcome.row.number), outcome.row.device, outcome.status, outcome.job_id or ""]
    for key in commands:
        item = items.get(key)
        if item is None:
            cells += ["", ""]
        else:
            output = first_line(item.get("stdout")) or first_line(item.get("stderr"))
            cells += [str(item.get("exit_status", "")), redact(output)]
    return [*cells, redact(error_of(outcome))]


def write_result(
    directory: Path, outcomes: list[Outcome], sent: list[str], redact: Redactor
) -> Path:
    """Write ``result_<timestamp>.csv`` in ``directory`` (never over an existing file)."""
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    commands = commands_of(outcomes, sent)
    for attempt in range(1, 1000):
        path = directory / (
            f"result_{stamp}.csv" if attempt == 1 else f"result_{stamp}_{attempt}.csv"
        )
        try:
            handle = path.open("x", newline="", encoding="utf-8")
        except FileExistsError:
            continue
        with handle:
            writer = csv.writer(handle)
            writer.writerow(header(commands))
            for outcome in outcomes:
                writer.writerow([_safe(c) for c in line(outcome, commands, redact)])
        return path
    raise FileExistsError(f"{directory}: result_{stamp}*.csv all exist")


def _safe(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_START) else cell
