"""What the `netpulse` sub-commands share: the console, the settings, and the Redis of the
system they act on (the configured one, or the private one of a running `netpulse up`)."""

from __future__ import annotations

from pathlib import Path

import typer
from redis import Redis
from rich.console import Console

from netpulse.config import ConfigError, Settings, load_settings

console = Console()

#: Where `netpulse up` writes the URL of the private Redis it started (removed at its exit),
#: so commands run beside it (`netpulse credential`, `netpulse key`) reach the same data.
REDIS_URL_FILE = "redis.url"


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def running_redis_url(settings: Settings) -> str:
    """``redis.url``, else the private Redis of the `netpulse up` using ``data_dir``."""
    if settings.redis.url:
        return settings.redis.url
    path = Path(settings.data_dir) / REDIS_URL_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise ConfigError(
            f"redis.url is not set (NETPULSE_REDIS__URL) and no `netpulse up` is running with "
            f"data directory {settings.data_dir} ({path} is missing)"
        ) from None


def redis_or_exit(settings: Settings) -> Redis:
    """A connection to the system's Redis, or exit 2 with the reason."""
    from netpulse.runtime.redis_conn import connect

    try:
        return connect(running_redis_url(settings))
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
