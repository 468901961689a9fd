"""`netpulse exec FILE.csv|FILE.xlsx`: the same commands or config on every device of a file.

The bulk tool of the original NetPulse (``netpulse-cli exec``), against our API: rows are read
and checked first (:mod:`~netpulse.cli.bulk_rows`: any problem is exit 2 before anything is
sent), submitted with ``POST /device/bulk`` in chunks (:mod:`~netpulse.cli.bulk_request`),
followed with long polls while a progress bar shows done, failed and queued
(:mod:`~netpulse.cli.bulk_run`, :mod:`~netpulse.cli.bulk_follow`,
:mod:`~netpulse.cli.bulk_board`), and written to ``result_<timestamp>.csv``
(:mod:`~netpulse.cli.bulk_report`), also after Ctrl-C, which cancels the jobs still queued.
This module holds the command and turns its options into a :class:`JobSpec`.

Exit status: 0 when every job finished with every exit status 0; 1 otherwise (a refused row,
a failed or unfinished job, Ctrl-C); 2 for bad input (the file, the options, or a request the
server refused as invalid before any job was queued).

Where the original differs, on purpose: it printed the passwords of the device table and the
API key, exited 0 on Ctrl-C leaving its jobs queued, and asked every job every 5 s. Here no
password or key is printed or written (the result file and messages go through a
:class:`~netpulse.cli.bulk_report.Redactor`), Ctrl-C cancels, and requests grow with jobs
ended, not with jobs times seconds.
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from netpulse.cli.bulk_report import EXIT_BAD_INPUT, Redactor
from netpulse.cli.bulk_request import JobSpec, OptionsError
from netpulse.cli.bulk_rows import DeviceFileError, Needs, read_device_file

#: Connection options that log in without a password.
KEY_OPTIONS = ("key_filename", "key_file", "pkey", "use_keys")


class Strategy(StrEnum):
    """``--queue-strategy``: the request's ``queue_strategy``."""

    fifo = "fifo"
    pinned = "pinned"


def exec_command(
    file: Path = typer.Argument(
        ...,
        metavar="FILE",
        help="Device file (.csv or .xlsx): Selected, Vendor, IP, Port, "
        "User, Pass, Keepalive, ... (docs/cli.md).",
    ),
    command: list[str] = typer.Option(
        None, "--command", "-c", help="A command to run (repeat for more)."
    ),
    config: list[str] = typer.Option(
        None, "--config", help="A config line to push (repeat for more)."
    ),
    vendor: str | None = typer.Option(
        None, help="Vendor or device type of rows that give none (cisco, cisco_ios, ...)."
    ),
    force: bool = typer.Option(False, "--force", help="Submit every row, selected or not."),
    driver: str = typer.Option("netmiko", help="Driver: netmiko, paramiko, ..."),
    queue_strategy: Strategy | None = typer.Option(
        None, help="fifo (connect per job) or pinned (warm sessions); the driver's default."
    ),
    ttl: int | None = typer.Option(
        None, min=1, max=86400, help="Seconds a job may wait in the queue (server default 600)."
    ),
    enable: bool = typer.Option(False, "--enable", help="Enter enable mode first (netmiko)."),
    save: bool = typer.Option(False, "--save", help="Save the configuration after --config."),
    driver_args: str | None = typer.Option(
        None, help="Options of the driver call, a JSON object (or a file holding one)."
    ),
    connection_args: str | None = typer.Option(
        None,
        help="Connection options shared by every row, a JSON object (or a file holding one), "
        'e.g. \'{"key_filename": "/etc/netpulse/id_ed25519"}\'.',
    ),
    render_name: str | None = typer.Option(None, help="Renderer (jinja2)."),
    render_template: str | None = typer.Option(
        None,
        help="Template rendering the lines (a local file, the text itself, or file:NAME on "
        "the server); the variables are then the JSON object of --config/--command.",
    ),
    render_context: str | None = typer.Option(
        None, help="Template variables, a JSON object (or a file holding one)."
    ),
    parse_name: str | None = typer.Option(None, help="Parser of the output: textfsm or ttp."),
    parse_template: str | None = typer.Option(
        None, help="Parsing template (a local file, the text itself, or file:NAME)."
    ),
    webhook: str | None = typer.Option(None, help="URL that gets each job's result."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password of every row from stdin."
    ),
    credential: str | None = typer.Option(
        None, help="Log in with this stored credential (netpulse credential set)."
    ),
    url: str = typer.Option("http://127.0.0.1:9000", envvar="NETPULSE_URL"),
    api_key: str = typer.Option(..., envvar="NETPULSE_API_KEY", show_default=False),
    api_key_header: str = typer.Option("X-API-KEY", envvar="NETPULSE_API_KEY_NAME"),
    chunk_size: int = typer.Option(100, min=1, max=10000, help="Rows per bulk request."),
    output: Path = typer.Option(Path("."), help="Directory of the result file."),
    wait: float = typer.Option(
        3600, min=1, help="Seconds to follow the jobs at most; later ones are left to run."
    ),
) -> None:
    """Run commands (or push config) on every selected device of a CSV or XLSX file, show
    the progress, and write result_<timestamp>.csv. Ctrl-C cancels the jobs still queued."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)

    def bad_input(message: str) -> typer.Exit:
        err.print(f"[red]netpulse exec:[/red] {escape(message)}")
        return typer.Exit(EXIT_BAD_INPUT)

    try:
        shared = _json_object("--connection-args", connection_args)
        password = _read_password() if password_stdin else None
        spec = JobSpec(
            driver=driver,
            **_payload(command, config, render_template),
            enable=enable,
            save=save,
            queue_strategy=queue_strategy.value if queue_strategy else None,
            ttl=ttl,
            driver_args=_json_object("--driver-args", driver_args),
            connection_args=shared,
            rendering=_rendering(render_name, render_template, render_context),
            parsing=_parsing(parse_name, parse_template),
            webhook_url=webhook,
            credential=credential,
            password=password,
        )
        if save and spec.kind != "config":
            raise OptionsError("--save saves the configuration after a push: give --config")
        spec.check()
        needs = Needs(
            device_type=driver == "netmiko",
            username=not credential and "username" not in shared,
            password=not (password_stdin or credential or "password" in shared)
            and not any(k in shared for k in KEY_OPTIONS),
            default_device_type=_vendor(vendor),
        )
        device_file = read_device_file(file, needs, force=force)
    except (OptionsError, DeviceFileError) as exc:
        raise bad_input(str(exc)) from None
    if not device_file.rows:
        raise bad_input(
            f"{file.name}: no row to submit ({device_file.skipped} not selected; --force "
            "submits them)"
        )
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise bad_input(f"--output {output}: {exc.strerror}") from None
    if not os.access(output, os.W_OK):
        raise bad_input(f"--output {output}: not writable (the result file goes there)")

    from netpulse.models.request import is_secret_option

    redact = Redactor(
        [api_key, password]
        + [v for r in device_file.rows for v in (r.password, r.secret)]
        + [str(v) for k, v in shared.items() if is_secret_option(k)]
    )
    from netpulse.cli.bulk_run import Target, run

    target = Target(url, api_key, api_key_header)
    raise typer.Exit(run(spec, device_file, target, chunk_size, output, wait, redact))


def _payload(
    command: list[str] | None, config: list[str] | None, render_template: str | None
) -> dict[str, Any]:
    """``kind`` and ``payload`` of the job: the lines, or with --render-template the
    template's variables (one JSON object), as the original's ``netpulse-cli`` took them."""
    if bool(command) == bool(config):
        raise OptionsError(
            "give the commands (--command/-c) or the config lines (--config), one of the two"
        )
    kind = "command" if command else "config"
    lines: list[str] = list(command or config or [])
    if render_template is None:
        return {"kind": kind, "payload": lines}
    try:
        variables = json.loads(lines[0]) if len(lines) == 1 else None
    except ValueError:
        variables = None
    if not isinstance(variables, dict):
        raise OptionsError(
            f"--render-template makes the lines: give its variables as one JSON object to "
            f"--{kind} (e.g. --{kind} '{{\"vlan\": 10}}'), or '{{}}' with --render-context"
        )
    return {"kind": kind, "payload": variables}


def _rendering(
    name: str | None, template: str | None, context: str | None
) -> dict[str, Any] | None:
    if name is None and template is None and context is None:
        return None
    rendering: dict[str, Any] = {"name": name or "jinja2"}
    if template is not None:
        rendering["template"] = _template(template)
    if context is not None:
        rendering["context"] = _json_object("--render-context", context)
    return rendering


def _parsing(name: str | None, template: str | None) -> dict[str, Any] | None:
    if name is None and template is None:
        return None
    parsing: dict[str, Any] = {"name": name or "textfsm"}
    if template is not None:
        parsing["template"] = _template(template)
    return parsing


def _template(value: str) -> str:
    """A local file's text, as the original read ``--template``; else the value itself
    (the template text, or ``file:NAME`` / a URL the server reads)."""
    path = Path(value).expanduser()
    try:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        pass
    return value


def _json_object(option: str, value: str | None) -> dict[str, Any]:
    """A JSON object given inline or as a file. The message never quotes the text (it may
    hold a passphrase)."""
    if value is None:
        return {}
    text = value
    path = Path(value).expanduser()
    try:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        pass
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise OptionsError(f"{option}: not JSON, nor a file holding JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise OptionsError(f"{option}: give a JSON object ({{...}}), not {type(parsed).__name__}")
    return parsed


def _vendor(value: str | None) -> str | None:
    from netpulse.cli.bulk_rows import VENDORS

    return None if value is None else VENDORS.get(value.lower(), value.lower())


def _read_password() -> str:
    """The password from stdin (its first line), or asked without echo on a terminal."""
    if sys.stdin is None:
        raise OptionsError("--password-stdin: there is no stdin")
    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Device password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise OptionsError("--password-stdin: stdin holds no password (its first line is empty)")
    return password
