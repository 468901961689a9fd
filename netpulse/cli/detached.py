"""`netpulse detached`: list, follow and kill detached tasks through a running NetPulse's HTTP
API (the same API key and URL as `netpulse run`; docs/detached-tasks.md)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from urllib.parse import quote

import typer

from netpulse.detached.store import TaskStatus

if TYPE_CHECKING:
    import httpx

detached_app = typer.Typer(
    help="Detached tasks (started with detach: true): list, follow, kill.", no_args_is_help=True
)

#: Exit status of a `tail --follow` stopped with Ctrl-C (as a shell reports SIGINT).
INTERRUPTED = 130
#: What the server puts for bytes that are not UTF-8 (or not all read yet).
REPLACEMENT = "\ufffd"
#: Seconds one request to the API may take.
REQUEST_TIMEOUT = 30.0

Url = Annotated[
    str, typer.Option("--url", envvar="NETPULSE_URL", help="The NetPulse API's address.")
]
ApiKey = Annotated[str, typer.Option("--api-key", envvar="NETPULSE_API_KEY", help="API key.")]
ApiKeyHeader = Annotated[
    str,
    typer.Option(
        "--api-key-header", envvar="NETPULSE_API_KEY_NAME", help="The header the API key goes in."
    ),
]
DEFAULT_URL = "http://127.0.0.1:9000"
DEFAULT_KEY_HEADER = "X-API-KEY"


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _detail(reply: httpx.Response) -> str:
    """The server's sentence (``detail``), whatever its shape."""
    try:
        detail = reply.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # validation errors: [{loc, msg, type}, ...]
        parts = []
        for err in detail:
            if isinstance(err, dict):
                loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
                parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
            else:
                parts.append(str(err))
        detail = "; ".join(parts)
    if not detail:  # not NetPulse's JSON (a proxy?): a short plain answer, else the reason
        text = reply.text.strip()
        plain = text and len(text) <= 200 and "\n" not in text and "<" not in text
        detail = text if plain else reply.reason_phrase or "error"
    return f"{reply.status_code}: {detail}"


@contextmanager
def _api(url: str, api_key: str, header: str) -> Iterator[httpx.Client]:
    """A client for the API; a connection failure ends the command with one sentence."""
    import httpx

    try:
        with httpx.Client(
            base_url=url, headers={header: api_key}, timeout=REQUEST_TIMEOUT
        ) as client:
            yield client
    except httpx.TimeoutException:
        _fail(f"NetPulse at {url} did not answer within {REQUEST_TIMEOUT:.0f} s")
    except httpx.TransportError as exc:
        _fail(f"cannot reach NetPulse at {url}: {exc or type(exc).__name__}")
    except httpx.HTTPError as exc:
        _fail(f"talking to NetPulse at {url} failed: {exc or type(exc).__name__}")
    except httpx.InvalidURL as exc:
        _fail(f"{url!r} is not a usable URL: {exc}")


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """The reply's JSON; a 4xx/5xx ends the command with the server's sentence."""
    reply = client.request(method, path, **kwargs)
    if reply.status_code >= 400:
        _fail(_detail(reply))
    try:
        return reply.json()
    except ValueError:
        _fail(f"{method} {path}: the answer ({reply.status_code}) is not JSON; is NetPulse there?")


def _task_path(task_id: str) -> str:
    return "/detached-tasks/" + quote(task_id, safe="")


def _when(iso: str | None) -> str:
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


@detached_app.command("list")
def list_tasks(
    api_key: ApiKey,
    status: Annotated[
        TaskStatus | None, typer.Option("--status", help="Only tasks in this state.")
    ] = None,
    url: Url = DEFAULT_URL,
    api_key_header: ApiKeyHeader = DEFAULT_KEY_HEADER,
) -> None:
    """The tasks the server keeps, newest first."""
    from rich import box
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    params = {"status": status.value} if status is not None else {}
    with _api(url, api_key, api_key_header) as client:
        tasks = _call(client, "GET", "/detached-tasks", params=params)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("task id", no_wrap=True)
    table.add_column("host", overflow="fold", min_width=9)
    table.add_column("status", no_wrap=True)
    table.add_column("exit", justify="right", no_wrap=True)
    table.add_column("bytes read", justify="right", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("command", overflow="fold", min_width=16)
    for task in tasks:
        exit_code = task.get("exit_code")
        table.add_row(
            task["task_id"],
            task["host"],
            task["status"],
            "" if exit_code is None else str(exit_code),
            str(task.get("last_offset") or 0),
            _when(task.get("created_at")),
            "; ".join(task.get("command") or []),
        )
    if tasks:
        # Never cut a column (wider than the terminal if need be); into a pipe, one line a
        # task (for grep and the like).
        out = Console(highlight=False)
        width = Measurement.get(out, out.options.update_width(1_000_000), table)
        needed = width.minimum if out.is_terminal else width.maximum
        if out.width < needed or not out.is_terminal:
            out = Console(highlight=False, width=needed)
        out.print(table)
    else:
        typer.echo("no detached tasks" + (f" {status.value}" if status else ""), err=True)


def _write(text: str) -> None:
    """The log as it is: no markup, no added newline, flushed at once."""
    out = getattr(sys.stdout, "buffer", None)
    if out is not None:
        sys.stdout.flush()
        out.write(text.encode("utf-8", "replace"))
        out.flush()
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _whole_characters(snap: dict[str, Any]) -> tuple[str, int]:
    """The output to print and the offset to ask from next. The server decodes the bytes it
    has read so far, so a character whose bytes are split between two reads of a running
    task ends the output as U+FFFD: that character is left for the next look, which starts
    at its first byte (only when the rest is valid UTF-8, so the byte count is exact)."""
    text: str = snap["output"]
    if not snap["completed"] and text.endswith(REPLACEMENT) and REPLACEMENT not in text[:-1]:
        text = text[:-1]
        return text, snap["offset"] + len(text.encode())
    return text, snap["next_offset"]


def _ending(task_id: str, snap: dict[str, Any]) -> str:
    error = snap.get("error") or {}
    reason = f"{error.get('type')}: {error.get('message')}" if error else ""
    return f"detached task {task_id} {snap['status']}" + (f" ({reason})" if reason else "")


@detached_app.command("tail")
def tail(
    task_id: Annotated[str, typer.Argument(help="The task's id (the job's task_id).")],
    api_key: ApiKey,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new output until it ends.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between two looks.")
    ] = 2.0,
    url: Url = DEFAULT_URL,
    api_key_header: ApiKeyHeader = DEFAULT_KEY_HEADER,
) -> None:
    """Print a task's log.

    With --follow, print its new output as it comes until the task ends, then exit 0 if it
    completed, 1 if it failed or was killed (the reason on stderr). Ctrl-C exits 130."""
    offset = 0
    try:
        with _api(url, api_key, api_key_header) as client:
            while True:
                snap = _call(client, "GET", _task_path(task_id), params={"offset": offset})
                if snap.get("dropped_bytes"):
                    typer.echo(
                        f"[{snap['dropped_bytes']} bytes of the log are no longer kept]", err=True
                    )
                if follow:
                    text, offset = _whole_characters(snap)
                else:
                    text, offset = snap["output"], snap["next_offset"]
                if text:
                    _write(text)
                if not follow or snap["completed"]:
                    break
                time.sleep(interval)
    except KeyboardInterrupt:
        raise typer.Exit(INTERRUPTED) from None
    if not snap["completed"] or snap["status"] == TaskStatus.COMPLETED:
        raise typer.Exit(0)
    typer.echo(_ending(task_id, snap), err=True)
    raise typer.Exit(1 if follow else 0)


@detached_app.command("kill")
def kill(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    api_key: ApiKey,
    url: Url = DEFAULT_URL,
    api_key_header: ApiKeyHeader = DEFAULT_KEY_HEADER,
) -> None:
    """Kill a running task, or forget an ended one.

    The follower kills the task's process group on its host at once, removes its directory
    and records detached.failed (killed)."""
    with _api(url, api_key, api_key_header) as client:
        reply = _call(client, "DELETE", _task_path(task_id))
    if reply.get("forgotten"):
        typer.echo(f"detached task {task_id} had ended ({reply.get('status')}): forgotten")
    else:
        typer.echo(f"detached task {task_id}: {reply.get('status')}")
