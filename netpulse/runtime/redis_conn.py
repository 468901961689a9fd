"""The one place every NetPulse process gets its Redis connection from.

A ``redis.url`` is either a plain Redis URL (``redis://``, ``rediss://``, ``unix://``) or a
Sentinel URL (``redis+sentinel://host:port[,host:port]/<master name>/<db>``); callers never
build connections themselves, so every process follows a Sentinel failover the same way.
"""

from __future__ import annotations

from typing import Any

from redis import Redis


def connect(url: str, **kwargs: Any) -> Redis:
    """A synchronous client for ``url`` (extra keyword arguments go to the client)."""
    return Redis.from_url(url, **kwargs)
