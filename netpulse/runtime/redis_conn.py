"""The one place every NetPulse process gets its Redis connection from.

A ``redis.url`` is either a plain Redis URL (``redis://``, ``rediss://``, ``unix://``, passed to
redis-py's ``from_url`` unchanged) or a Sentinel URL::

    redis+sentinel://[[username]:password@]host[:port][,host[:port]...]/<master name>[/<db>]
                     [?sentinel_username=...&sentinel_password=...]

- the addresses are the Sentinels' (port 26379 when omitted; IPv6 in brackets, ``[::1]:26379``);
- the path names the monitored master (``sentinel monitor <name> ...``) and, optionally, the
  database number (0 when omitted);
- ``username``/``password`` authenticate to the master (and so to whichever replica is promoted:
  give every data node the same ``requirepass``/``masterauth``);
- ``sentinel_username``/``sentinel_password`` authenticate to the Sentinels themselves, for
  Sentinels started with ``requirepass``; without them the Sentinels are asked unauthenticated;
- special characters in names and passwords are percent-encoded (``%40`` for ``@``);
- TLS to a Sentinel set (``rediss+sentinel://``) is not supported.

Callers never build connections themselves, so every process follows a Sentinel failover the
same way: a Sentinel client asks the Sentinels for the current master whenever it opens a
connection, and a connection to a master that has been demoted (``READONLY``) or that refuses
writes because it lost its replicas (``NOREPLICAS``) is dropped, so the next command goes to
the new master. What a process does while there is no master (the seconds of a failover) is
its own business: see :mod:`netpulse.runtime.outage`.

``NOREPLICAS`` matters when the master being replaced still runs (``SENTINEL FAILOVER``, a
network partition): the Sentinels promote the replica, but the old master takes writes until
they reconfigure it, up to their INFO period (10 s) later, and discards them all when it
resynchronises with the new master (accepted jobs, results and events lost). A master set with
``min-replicas-to-write 1`` refuses those writes instead, from the moment its replica leaves
it; to NetPulse that refusal is Redis being away, and the command is retried on the master the
Sentinels name.

Passwords never appear in the messages of this module: :func:`redact_url` masks them, and
everything that logs a Redis URL should log it through that function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

from redis import Redis
from redis import asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncSentinelManagedConnection
from redis.connection import parse_url as parse_plain_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection

__all__ = [
    "DEFAULT_SENTINEL_PORT",
    "SENTINEL_SCHEME",
    "AsyncSentinelBlockingConnectionPool",
    "RedisURL",
    "connect",
    "connect_async",
    "connect_async_blocking",
    "parse_redis_url",
    "redact_url",
    "redis_text",
]

SENTINEL_SCHEME = "redis+sentinel"
PLAIN_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_SENTINEL_PORT = 26379

#: Query parameters a Sentinel URL may carry (everything else is refused, not ignored).
SENTINEL_QUERY_KEYS = ("sentinel_username", "sentinel_password")

#: Timeouts for the connections to the Sentinels when the caller gives none. A Sentinel that
#: hangs must not hang the process: redis-py asks the next one when this one times out.
SENTINEL_SOCKET_DEFAULTS: dict[str, float] = {
    "socket_connect_timeout": 2.0,
    "socket_timeout": 2.0,
}

_EXAMPLE = "redis+sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/mymaster/0"
_MASK = "***"


@dataclass(frozen=True)
class RedisURL:
    """A parsed ``redis.url``: where to connect and how, without connecting."""

    kind: Literal["plain", "sentinel"]
    #: The URL as configured (it may hold a password: log :attr:`redacted` instead).
    url: str = field(repr=False)
    db: int = 0
    #: Sentinel URLs only: the Sentinels' addresses, in the order given.
    sentinels: tuple[tuple[str, int], ...] = ()
    #: Sentinel URLs only: the name of the monitored master.
    master_name: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)

    @property
    def is_sentinel(self) -> bool:
        return self.kind == "sentinel"

    @property
    def redacted(self) -> str:
        """The URL with its passwords masked, fit for logs and error messages."""
        return redact_url(self.url)


def redact_url(url: str) -> str:
    """``url`` with every password replaced by ``***`` (user info and ``*password*`` query
    values), so a URL can be logged or shown. Masks more than needed rather than less: user
    info without a colon is masked whole, since some people put the password there."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _MASK if "@" in url else url
    rest, qsep, query = rest.partition("?")
    if "@" in rest:
        userinfo, _, hosts = rest.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        rest = f"{user}:{_MASK}@{hosts}" if colon else f"{_MASK}@{hosts}"
    if qsep:
        query = re.sub(r"((?:^|&)[^=&]*password[^=&]*=)[^&]*", rf"\g<1>{_MASK}", query, flags=re.I)
    return f"{scheme}{sep}{rest}{qsep}{query}"


def parse_redis_url(url: str) -> RedisURL:
    """Check and parse a ``redis.url``; ``ValueError`` with a sentence naming the mistake.

    Plain URLs are checked with redis-py's own parser (what :func:`connect` will use); Sentinel
    URLs with the rules in this module's docstring.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("the Redis URL is empty")
    if url != url.strip():
        raise ValueError(f"the Redis URL {redact_url(url)!r} has spaces around it")
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError(
            f"{redact_url(url)!r} is not a Redis URL: it must start with redis://, rediss://, "
            f"unix:// or {SENTINEL_SCHEME}://"
        )
    if scheme in PLAIN_SCHEMES:
        return _parse_plain(url)
    if scheme == SENTINEL_SCHEME:
        return _parse_sentinel(url)
    if scheme in ("rediss+sentinel", "redis+sentinels", "sentinel"):
        raise ValueError(
            f"{redact_url(url)!r}: {scheme}:// is not supported; a Sentinel set is given as "
            f"{SENTINEL_SCHEME}://host:port,host:port/<master name>/<db> (TLS to Sentinels is "
            "not supported)"
        )
    raise ValueError(
        f"{redact_url(url)!r} has the unknown scheme {scheme}://; use redis://, rediss://, "
        f"unix:// or {SENTINEL_SCHEME}://"
    )


def _parse_plain(url: str) -> RedisURL:
    try:
        options = parse_plain_url(url)
    except ValueError as exc:
        # redis-py's messages name the part (port, db, scheme) but may quote the URL whole.
        reason = str(exc).replace(url, redact_url(url))
        raise ValueError(f"{redact_url(url)!r} is not a valid Redis URL: {reason}") from None
    scheme, _, rest = url.partition("://")
    if scheme.lower() != "unix":
        # redis-py silently falls back to database 0 when the path is not a number.
        db_text = rest.partition("?")[0].rpartition("@")[2].partition("/")[2]
        if db_text.strip("/") and not db_text.strip("/").isdigit():
            raise ValueError(
                f"{redact_url(url)!r}: the database {db_text!r} after the address must be a "
                "number (0 when omitted)"
            )
    db = options.get("db", 0)
    return RedisURL(
        kind="plain",
        url=url,
        db=int(db) if db is not None else 0,
        username=options.get("username"),
        password=options.get("password"),
    )


def _parse_sentinel(url: str) -> RedisURL:
    shown = redact_url(url)
    rest = url.partition("://")[2]
    if "#" in rest:
        raise ValueError(f"Sentinel URL {shown!r}: a '#' must be percent-encoded (%23)")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = (unquote(secret) or None) if colon else None
    sentinels = tuple(_sentinel_address(item, shown) for item in netloc.split(","))

    segments = path.split("/")
    if segments and segments[-1] == "" and len(segments) > 1:
        segments.pop()  # one trailing slash is harmless
    name = unquote(segments[0]) if segments else ""
    if not name:
        raise ValueError(
            f"Sentinel URL {shown!r} names no master: add /<master name> after the Sentinel "
            f"addresses, the name given to `sentinel monitor`, e.g. {_EXAMPLE}"
        )
    if any(ch.isspace() for ch in name):
        raise ValueError(f"Sentinel URL {shown!r}: the master name {name!r} contains spaces")
    if len(segments) > 2:
        raise ValueError(
            f"Sentinel URL {shown!r} has too many path parts: after the addresses comes "
            f"/<master name>/<db> only, e.g. {_EXAMPLE}"
        )
    db = 0
    if len(segments) == 2:
        if not segments[1].isdigit():
            raise ValueError(
                f"Sentinel URL {shown!r}: the database {segments[1]!r} after the master name "
                "must be a number (0 when omitted)"
            )
        db = int(segments[1])

    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in SENTINEL_QUERY_KEYS:
            raise ValueError(
                f"Sentinel URL {shown!r}: unknown option {key!r}; supported: "
                f"{', '.join(SENTINEL_QUERY_KEYS)}"
            )
        options[key] = value
    return RedisURL(
        kind="sentinel",
        url=url,
        db=db,
        sentinels=sentinels,
        master_name=name,
        username=username,
        password=password,
        sentinel_username=options.get("sentinel_username") or None,
        sentinel_password=options.get("sentinel_password") or None,
    )


def _sentinel_address(item: str, shown: str) -> tuple[str, int]:
    """``host[:port]`` or ``[v6]:port`` -> (host, port), port 26379 when omitted."""
    if not item:
        raise ValueError(
            f"Sentinel URL {shown!r} has an empty Sentinel address (a comma too many, or no "
            f"address at all); give host:port pairs separated by commas, e.g. {_EXAMPLE}"
        )
    if item.startswith("["):
        host, bracket, port_text = item[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise ValueError(f"Sentinel URL {shown!r}: {item!r} is not a valid [IPv6]:port")
        has_port, port_text = bool(port_text), port_text[1:]
    else:
        host, colon, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        has_port = bool(colon)
        if ":" in host:
            raise ValueError(
                f"Sentinel URL {shown!r}: write the IPv6 address in {item!r} in brackets, "
                "e.g. [::1]:26379"
            )
    if not host:
        raise ValueError(f"Sentinel URL {shown!r}: {item!r} has no host name")
    if not has_port:
        return host, DEFAULT_SENTINEL_PORT
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(
            f"Sentinel URL {shown!r}: the port {port_text!r} of {host} must be a number "
            "from 1 to 65535"
        )
    return host, int(port_text)


def _sentinel_kwargs(target: RedisURL, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Connection options for the Sentinels themselves: the caller's socket options (as
    redis-py does by default), short timeouts when none are given, and the Sentinel login."""
    options: dict[str, Any] = dict(SENTINEL_SOCKET_DEFAULTS)
    options.update({k: v for k, v in kwargs.items() if k.startswith("socket_")})
    if target.sentinel_username:
        options["username"] = target.sentinel_username
    if target.sentinel_password:
        options["password"] = target.sentinel_password
    return options


def _master_kwargs(target: RedisURL, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Connection options for the master: the URL's database and login, then the caller's
    options (which win, as they do over a plain URL's in redis-py's ``from_url``)."""
    options: dict[str, Any] = {"db": target.db}
    if target.username:
        options["username"] = target.username
    if target.password:
        options["password"] = target.password
    options.update(kwargs)
    return options


def redis_text(value: bytes | str) -> str:
    """A key, member or value read from Redis, as text.

    NetPulse's clients never set ``decode_responses``, so replies are ``bytes``; redis-py's
    annotations say ``bytes | str`` for every reply, whatever the client's setting."""
    return value.decode() if isinstance(value, bytes) else value


def _refuses_writes(exc: ResponseError) -> bool:
    """``NOREPLICAS``: the master has fewer good replicas than ``min-replicas-to-write``."""
    return str(exc).startswith("NOREPLICAS")


def _refusal(exc: ResponseError) -> RedisConnectionError:
    return RedisConnectionError(
        f"the master refuses writes ({exc}): it lost its replicas, a failover may be under "
        "way; asking the Sentinels for the master again"
    )


class _MasterConnection(SentinelManagedConnection):
    """A connection to the Sentinel-named master that, besides ``READONLY`` (redis-py's own
    handling), takes ``NOREPLICAS`` for a master being replaced: it disconnects, so the next
    attempt asks the Sentinels again, and raises a ``ConnectionError`` (an outage).

    It also closes itself when a read is interrupted, as redis-py's plain connection does:
    redis-py 8.1's Sentinel connection does not by default, so a read cut short (RQ's stop
    signal raised in the middle of a blocking dequeue) went back to the
    pool with its reply still due, and the next command read that reply instead of its own
    (a FIFO worker then hung in its teardown until killed)."""

    def read_response(
        self,
        disable_decoding: bool = False,
        *,
        disconnect_on_error: bool | None = True,
        **kwargs: Any,
    ) -> Any:
        try:
            return super().read_response(
                disable_decoding, disconnect_on_error=disconnect_on_error, **kwargs
            )
        except ResponseError as exc:
            if not _refuses_writes(exc):
                raise
            self.disconnect()
            raise _refusal(exc) from exc


class _AsyncMasterConnection(AsyncSentinelManagedConnection):
    """Async twin of :class:`_MasterConnection`, which also leaves a replaced master when it
    is taken from the pool.

    Once any connection of the pool has found a new master, redis-py closes the pool's idle
    connections, but not those in use at that moment; its synchronous pool drops them when
    they are released, its asyncio pools put them back as they are. Such a connection kept
    reading the old master, which answers reads until the Sentinels reconfigure it (up to
    10 s): the delivery service could claim an event on the new master and then read its
    record from the old one, where it does not exist."""

    async def connect(self) -> None:
        known = self.connection_pool.master_address
        if self.is_connected and known is not None and (self.host, self.port) != tuple(known):
            await self.disconnect()
        await super().connect()

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except ResponseError as exc:
            if not _refuses_writes(exc):
                raise
            await self.disconnect()
            raise _refusal(exc) from exc


class _SentinelMaster(Redis):
    """The master's client; closing it also closes the connections to the Sentinels, which
    redis-py leaves open (they belong to the ``Sentinel`` object, not to the client)."""

    # ``Sentinel.master_for`` always builds this client on a Sentinel pool.
    connection_pool: SentinelConnectionPool

    def close(self) -> None:
        try:
            super().close()
        finally:
            for sentinel in self.connection_pool.sentinel_manager.sentinels:
                sentinel.close()


class _AsyncSentinelMaster(aioredis.Redis):
    """Async twin of :class:`_SentinelMaster`."""

    # ``Sentinel.master_for`` always builds this client on a Sentinel pool.
    connection_pool: AsyncSentinelConnectionPool

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            for sentinel in self.connection_pool.sentinel_manager.sentinels:
                await sentinel.aclose()


class AsyncSentinelBlockingConnectionPool(
    AsyncSentinelConnectionPool, aioredis.BlockingConnectionPool
):
    """A Sentinel-managed pool that makes a caller wait for a free connection instead of
    raising when all are in use (redis-py 8.1 has no such class; this combines its two).

    The delivery service keeps one connection per delivery in flight; with a plain pool a burst
    beyond ``max_connections`` would fail deliveries instead of queueing them.
    """


def connect(url: str, **kwargs: Any) -> Redis:
    """A synchronous client for ``url``; extra keyword arguments go to the client (for a
    Sentinel URL: to the master's connections; ``socket_*`` options also to the Sentinels').

    The client of a Sentinel URL asks the Sentinels for the master when it opens a connection
    and after a connection error, so the same client object follows a failover.
    """
    target = parse_redis_url(url)
    if not target.is_sentinel:
        return Redis.from_url(url, **kwargs)
    assert target.master_name is not None
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=_sentinel_kwargs(target, kwargs))
    return sentinel.master_for(
        target.master_name,
        redis_class=_SentinelMaster,
        connection_class=_MasterConnection,
        **_master_kwargs(target, kwargs),
    )


def _async_master(target: RedisURL, kwargs: dict[str, Any], **pool: Any) -> aioredis.Redis:
    """The asyncio client of a Sentinel URL's master; ``pool``: pool class and its options."""
    assert target.master_name is not None
    sentinel = AsyncSentinel(
        list(target.sentinels), sentinel_kwargs=_sentinel_kwargs(target, kwargs)
    )
    return sentinel.master_for(
        target.master_name,
        redis_class=_AsyncSentinelMaster,
        connection_class=_AsyncMasterConnection,
        **pool,
        **_master_kwargs(target, kwargs),
    )


def connect_async(url: str, **kwargs: Any) -> aioredis.Redis:
    """An asyncio client for ``url``, the twin of :func:`connect` (same URLs, same options)."""
    target = parse_redis_url(url)
    if not target.is_sentinel:
        return aioredis.Redis.from_url(url, **kwargs)
    return _async_master(target, kwargs)


def connect_async_blocking(
    url: str, *, max_connections: int, timeout: float | None = None, **kwargs: Any
) -> aioredis.Redis:
    """An asyncio client on a pool of at most ``max_connections`` that waits ``timeout``
    seconds (``None``: as long as it takes) for a free connection instead of raising.

    Plain URLs get redis-py's ``BlockingConnectionPool``, Sentinel URLs
    :class:`AsyncSentinelBlockingConnectionPool`. Closing the client closes its pool.
    """
    target = parse_redis_url(url)
    if not target.is_sentinel:
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=timeout, **kwargs
        )
        return aioredis.Redis.from_pool(pool)
    return _async_master(
        target,
        kwargs,
        connection_pool_class=AsyncSentinelBlockingConnectionPool,
        max_connections=max_connections,
        timeout=timeout,
    )
