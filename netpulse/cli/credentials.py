"""`netpulse credential`: the built-in credential store (provider ``local``), written straight
into the system's Redis. Secrets come from stdin or a file, never from the command line
(which every user of the machine can read in the process list)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer
from redis import Redis
from redis.exceptions import RedisError
from rich.markup import escape

from netpulse.cli.common import console, redis_or_exit, running_redis_url, settings_or_exit
from netpulse.config import Settings
from netpulse.credentials import store
from netpulse.models.credential import NAME_PATTERN
from netpulse.runtime.redis_conn import redact_url
from netpulse.security.sealing import KEY_FILE, SealError

credential_app = typer.Typer(
    help="The built-in credential store (what jobs name with credential.ref).",
    no_args_is_help=True,
)


@credential_app.command("set")
def credential_set(
    name: str = typer.Argument(..., help="The credential's name (its ref in requests)."),
    username: str = typer.Option(None, help="The login name."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from stdin (first line)."
    ),
    secret_stdin: bool = typer.Option(
        False, "--secret-stdin", help="Read the enable secret from stdin (after the password)."
    ),
    pkey_file: Path = typer.Option(None, help="A private key file to store as text."),
) -> None:
    """Store (or replace) a credential."""
    if not re.fullmatch(NAME_PATTERN, name):
        console.print("[red]the name takes letters, digits and _ . : - (at most 128)[/red]")
        raise typer.Exit(2)
    values: dict[str, str] = {}
    if username:
        values["username"] = username
    lines = sys.stdin.read().splitlines() if password_stdin or secret_stdin else []
    for wanted, field in ((password_stdin, "password"), (secret_stdin, "secret")):
        if wanted:
            if not lines:
                console.print(f"[red]no {field} on stdin[/red]")
                raise typer.Exit(2)
            values[field] = lines.pop(0)
    if pkey_file is not None:
        try:
            values["pkey"] = pkey_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"cannot read the key file {pkey_file}: {exc}", 2)
    if not values:
        console.print("[red]give --username, --password-stdin, --secret-stdin or --pkey-file[/red]")
        raise typer.Exit(2)
    settings = settings_or_exit()
    conn = redis_or_exit(settings)
    with _redis_errors(settings):
        _same_key_as_the_system(conn, settings, name)
        info = store.put(conn, name, values)
    typer.echo(f"stored {info.name}: {', '.join(info.fields)}")


@credential_app.command("list")
def credential_list() -> None:
    """The stored credentials and the fields each has (never their values)."""
    settings = settings_or_exit()
    conn = redis_or_exit(settings)
    with _redis_errors(settings):
        found = store.all_info(conn)
    for info in found:
        typer.echo(f"{info.name}\t{','.join(info.fields)}\tupdated {info.updated_at.isoformat()}")


@credential_app.command("delete")
def credential_delete(name: str) -> None:
    """Forget a stored credential (jobs naming it then fail with credential_error)."""
    settings = settings_or_exit()
    conn = redis_or_exit(settings)
    with _redis_errors(settings):
        removed = store.delete(conn, name)
    if not removed:
        console.print(f"[red]no stored credential named {name!r}[/red]")
        raise typer.Exit(1)
    typer.echo(f"deleted {name}")


@contextmanager
def _redis_errors(settings: Settings) -> Iterator[None]:
    """An unreachable Redis (a stale ``redis.url`` of a `netpulse up` that died, a wrong URL)
    is a sentence and exit status 1, not a traceback."""
    try:
        yield
    except RedisError as exc:
        url = redact_url(running_redis_url(settings))
        _fail(f"cannot use the system's Redis at {url}: {exc}", 1)


def _same_key_as_the_system(conn: Redis, settings: Settings, name: str) -> None:
    """Refuse (exit 2) to seal with a key the system does not have: its jobs could never
    open the credential. Without ``security.encryption_keys`` this command seals with
    ``<data_dir>/encryption.key``, made when missing (``data_dir`` defaults to ``.netpulse``
    in the current directory): run elsewhere than the system, it would make a key of its own.
    The test is another stored credential: sealed by the system, it must open here."""
    others = sorted(i.name for i in store.all_info(conn) if i.name != name)
    if not others:
        return  # nothing to compare with: the first credential makes or uses the key
    key_file = Path(settings.data_dir).expanduser() / KEY_FILE
    if settings.security.encryption_keys or key_file.exists():
        try:
            store.read(conn, others[0])
            return
        except SealError:
            pass
    where = "security.encryption_keys" if settings.security.encryption_keys else str(key_file)
    reason = (
        f"this command's encryption key ({where}) is not the one the stored credentials were "
        "sealed with, so jobs could not open what it would store: run it with the system's "
        "settings (its NETPULSE_DATA_DIR, or the same security.encryption_keys)"
    )
    _fail(reason, 2)


def _fail(message: str, status: int) -> NoReturn:
    """Say why (the text printed as it is, never read as markup) and exit with ``status``."""
    console.print(f"[red]{escape(message)}[/red]")
    raise typer.Exit(status)
