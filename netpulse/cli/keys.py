"""`netpulse key`: make, list and revoke scoped API keys, straight in the system's Redis (for
the first admin key, before any key but the settings' exists)."""

from __future__ import annotations

import typer

from netpulse.cli.common import console, redis_or_exit, settings_or_exit
from netpulse.errors import NetPulseError
from netpulse.security import api_keys
from netpulse.security.api_keys import Scope

key_app = typer.Typer(help="Scoped API keys (read, exec, config, admin).", no_args_is_help=True)


@key_app.command("create")
def key_create(
    name: str = typer.Argument(..., help="The key's name (what jobs show as submitted_by)."),
    scope: list[Scope] = typer.Option(..., "--scope", help="A scope; repeat for more."),
) -> None:
    """Make a key and print it once (store it now: it is not kept, only its digest)."""
    conn = redis_or_exit(settings_or_exit())
    try:
        made = api_keys.create(conn, name, scope)
    except NetPulseError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    typer.echo(made.key)
    typer.echo(
        f"key {made.name!r} with scopes {', '.join(made.scopes)}; it is shown only now",
        err=True,
    )


@key_app.command("list")
def key_list() -> None:
    """The stored keys: name, scopes, creation time, last four characters."""
    conn = redis_or_exit(settings_or_exit())
    for record in api_keys.listing(conn):
        typer.echo(
            f"{record.name}\t{','.join(record.scopes)}\t{record.created_at.isoformat()}"
            f"\t...{record.hint}"
        )


@key_app.command("revoke")
def key_revoke(name: str) -> None:
    """Revoke a key at once."""
    conn = redis_or_exit(settings_or_exit())
    try:
        api_keys.revoke(conn, name)
    except NetPulseError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    typer.echo(f"revoked {name}")
