"""HTTP clients that can only connect where the destination policy allows.

The SSRF guard is part of the connection layer, not of the code that sends: every address a
client of this module connects to has been judged by :mod:`netpulse.net.ssrf` first, so a
webhook caller (built in or third-party) and a template download are safe however they build
their request. Two clients, for two uses:

- :func:`make_client`: the ``httpx.AsyncClient`` the delivery service shares between all
  deliveries. It runs on aiohttp's connection pool (``httpx-aiohttp``): one keep-alive POST
  costs about 0.3 ms of CPU there against about 1.3 ms through httpx's default transport
  (``bench/RESULTS.md``), the difference between a quarter of a core and a saturated one at
  1,000 deliveries per second. The guard sits in aiohttp's connector: its resolver keeps only
  the allowed addresses of every DNS answer (aiohttp then connects to exactly those, so a
  second answer cannot swap the destination: DNS pinning), and a URL written with an IP
  address, which aiohttp never hands to the resolver, is judged when the connection is asked
  for. The idea is the one of svix's webhook server, whose HTTP client resolves through a
  resolver that drops non-global answers.
- :func:`make_sync_client`: a blocking ``httpx.Client`` (template downloads). Its transport
  resolves and judges the host, then sends the request to a checked address, keeping the
  name in the Host header and TLS SNI; when several addresses are allowed, each is tried in
  the resolver's order until one accepts the connection.

Neither follows redirects (a redirect would lead to an address nobody judged) nor reads proxy
settings from the environment (a proxy would connect on our behalf). A refused destination
raises :class:`~netpulse.net.ssrf.DestinationRefused` and a name that does not resolve
:class:`~netpulse.net.ssrf.DestinationUnresolvable`, as themselves (not wrapped in an httpx
error), before anything is sent.

The second half of the module is the transport's error table: :func:`describe_failure` puts
what went wrong with a request that got no answer into one short sentence for the delivery
log, whatever layer (httpx, aiohttp, the operating system) reported it.
"""

from __future__ import annotations

import base64
import contextvars
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address
from aiohttp.resolver import DefaultResolver
from httpx_aiohttp import AiohttpTransport

from netpulse.net.ssrf import (
    DEFAULT_PORTS,
    DestinationPolicy,
    DestinationRefused,
    DestinationUnresolvable,
    allowed_addresses,
    check_ip,
    ip_literal,
    resolve_and_check_sync,
    resolver_error,
)

__all__ = [
    "GuardedSender",
    "SentResponse",
    "describe_failure",
    "is_timeout",
    "make_client",
    "make_sync_client",
    "remote_ip",
    "short_reason",
]

#: Where the connector notes the address a request's connection goes to, for the transport
#: to report on the response. One holder per request, set by the transport in the request's
#: own task: aiohttp asks its connector for the connection from that task.
_peer: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "netpulse_net_peer", default=None
)

#: The response extension carrying the IP address a request was sent to.
REMOTE_IP = "netpulse.remote_ip"


# -- the asynchronous client (aiohttp) --------------------------------------------------------


class _PolicyResolver(AbstractResolver):
    """Resolves with aiohttp's default resolver, then keeps only the allowed answers."""

    def __init__(self, policy: DestinationPolicy) -> None:
        self._policy = policy
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            answers = await self._inner.resolve(host, port, family)
        except OSError as exc:
            # Not an OSError, so aiohttp lets it through unwrapped.
            raise DestinationUnresolvable(host, resolver_error(exc)) from exc
        allowed = set(allowed_addresses(host, [a["host"] for a in answers], self._policy))
        return [a for a in answers if _normalised(a["host"]) in allowed]

    async def close(self) -> None:
        await self._inner.close()


def _normalised(ip: str) -> str:
    return str(ipaddress.ip_address(ip))


class _PolicyConnector(aiohttp.TCPConnector):
    """aiohttp's connector, judging the hosts it would connect to without asking DNS.

    aiohttp sends a host written as an IP address straight to ``connect()``, never to the
    resolver, so such hosts are checked here, for every request (a verdict is cached, so a
    pooled connection costs a dictionary look-up).
    """

    def __init__(self, policy: DestinationPolicy, **kwargs: Any) -> None:
        super().__init__(resolver=_PolicyResolver(policy), **kwargs)
        self._netpulse_policy = policy

    async def connect(
        self, req: aiohttp.ClientRequest, traces: list[Any], timeout: aiohttp.ClientTimeout
    ) -> aiohttp.connector.Connection:
        host = req.url.raw_host or ""
        if is_ip_address(host) and ip_literal(host) is not None:
            # Forms ipaddress does not read (``127.1``) aiohttp refuses by itself.
            check_ip(host, self._netpulse_policy)
        connection = await super().connect(req, traces, timeout)
        holder = _peer.get()
        if holder is not None and connection.transport is not None:
            peer = connection.transport.get_extra_info("peername")
            if peer:
                holder.append(str(peer[0]))
        return connection


class _ReportingTransport(AiohttpTransport):
    """The httpx-aiohttp transport, adding the address connected to as a response extension
    (``remote_ip(response)``)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        holder: list[str] = []
        token = _peer.set(holder)
        try:
            response = await super().handle_async_request(request)
        finally:
            _peer.reset(token)
        if holder:
            response.extensions[REMOTE_IP] = holder[-1]
        return response


def _guarded_session(policy: DestinationPolicy, max_connections: int) -> aiohttp.ClientSession:
    """An aiohttp session on the guarded connector. Received cookies are never kept: every
    delivery is independent, and one receiver must not be able to plant a cookie that a
    later delivery (maybe another user's) would send. Made inside the running event loop
    (aiohttp requires one)."""
    connector = _PolicyConnector(
        policy,
        limit=max_connections,
        limit_per_host=0,
        ssl=httpx.create_ssl_context(trust_env=False),
    )
    return aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    )


class SentResponse:
    """What :class:`GuardedSender` got back: the status, the headers, the first bytes of the
    body and the address the request went to."""

    __slots__ = ("body", "headers", "remote_ip", "status_code")

    def __init__(self, status_code: int, headers: Any, body: bytes, remote_ip: str | None) -> None:
        self.status_code = status_code
        self.headers = headers
        self.body = body
        self.remote_ip = remote_ip


class GuardedSender:
    """One request at a time through bare aiohttp on the guarded connector: the built-in
    webhook caller's path. httpx's request and response models cost about a quarter of the
    delivery service's CPU per event (bench/RESULTS.md, issue 17); the guard, the
    connection pool and the error types are aiohttp's either way. Redirects are never
    followed, nothing is read from the environment, and at most ``read_limit`` bytes of an
    answer are read."""

    def __init__(self, policy: DestinationPolicy, max_connections: int = 100) -> None:
        self._policy = policy
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def send(
        self,
        method: str,
        url: str,
        *,
        body: bytes,
        headers: dict[str, str],
        auth: tuple[str, str] | None,
        cookies: dict[str, str] | None,
        timeout: float,
        read_limit: int = 4096,
    ) -> SentResponse:
        if self._session is None:
            self._session = _guarded_session(self._policy, self._max_connections)
        if auth is not None:  # as httpx's auth: it replaces an Authorization header
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {credentials}"  # UTF-8, as httpx sends it
        holder: list[str] = []
        token = _peer.set(holder)
        try:
            async with self._session.request(
                method,
                url,
                data=body,
                headers=headers,
                cookies=cookies,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                excerpt = await _read_excerpt(response, read_limit)
                return SentResponse(
                    response.status, response.headers, excerpt, holder[-1] if holder else None
                )
        finally:
            _peer.reset(token)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


#: An answer longer than this is not read to its end: its connection is dropped instead of
#: kept for the next request.
_DRAIN_LIMIT = 1 << 20


async def _read_excerpt(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The first ``limit`` bytes of the answer; the rest is read and dropped (so the
    connection can serve the next request) unless it is long."""
    data = bytearray()
    while len(data) < limit:
        chunk = await response.content.read(limit - len(data))
        if not chunk:
            return bytes(data)
        data += chunk
    drained = 0
    while drained < _DRAIN_LIMIT:
        chunk = await response.content.read(65536)
        if not chunk:
            return bytes(data)
        drained += len(chunk)
    response.close()
    return bytes(data)


def make_client(policy: DestinationPolicy, max_connections: int = 100) -> httpx.AsyncClient:
    """An asynchronous client reaching only what ``policy`` allows, with up to
    ``max_connections`` connections kept alive between requests (cookies never kept)."""

    def session() -> aiohttp.ClientSession:
        return _guarded_session(policy, max_connections)

    client = httpx.AsyncClient(
        transport=_ReportingTransport(client=session), follow_redirects=False, trust_env=False
    )
    # httpx copies a jar given to it (and drops its policy), so set the policy in place.
    client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return client


# -- the blocking client (httpx's own transport) ----------------------------------------------


class _PinningTransport(httpx.BaseTransport):
    """Sends each request to a checked address of its host (see the module docstring)."""

    def __init__(self, policy: DestinationPolicy) -> None:
        self._policy = policy
        self._inner = httpx.HTTPTransport(trust_env=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port if url.port is not None else DEFAULT_PORTS.get(url.scheme, 80)
        addresses = resolve_and_check_sync(url.host, port, self._policy)
        failure: httpx.TransportError | None = None
        for ip in addresses:
            try:
                response = self._inner.handle_request(_pinned(request, ip))
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = exc
                last = ip
                continue
            response.extensions[REMOTE_IP] = ip
            return response
        assert failure is not None  # resolve_and_check_sync returns at least one address
        raise type(failure)(f"{last}: {failure or type(failure).__name__}", request=request)

    def close(self) -> None:
        self._inner.close()


def _pinned(request: httpx.Request, ip: str) -> httpx.Request:
    """``request`` sent to ``ip``: the Host header (set from the URL) stays, and for https the
    name goes into TLS SNI and the certificate check."""
    extensions = dict(request.extensions)
    if request.url.scheme == "https":
        extensions["sni_hostname"] = request.url.host
    return httpx.Request(
        request.method,
        request.url.copy_with(host=ip),
        headers=request.headers,
        stream=request.stream,
        extensions=extensions,
    )


def make_sync_client(policy: DestinationPolicy, timeout: float = 10.0) -> httpx.Client:
    """A blocking client reaching only what ``policy`` allows (``timeout`` per phase)."""
    return httpx.Client(
        transport=_PinningTransport(policy),
        follow_redirects=False,
        trust_env=False,
        timeout=timeout,
    )


def remote_ip(response: httpx.Response) -> str | None:
    """The IP address a response of one of these clients came from (None if not known)."""
    value = response.extensions.get(REMOTE_IP)
    return value if isinstance(value, str) else None


# -- the transport's error table --------------------------------------------------------------

_MAX_REASON = 200

# A URL in an error text, split so credentials and the query string can be left out: the
# delivery log shows URLs without them (webhook URLs may carry a token in the query).
_URL = re.compile(r"(https?://)(?:[^/\s'\"@]*@)?([^\s'\"?#]*)(?:[?#][^\s'\"]*)?")


def short_reason(text: str) -> str:
    """One line of at most 200 characters, URLs without credentials or query string."""
    line = " ".join(_URL.sub(r"\1\2", text).split())
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 1] + "…"


def _timeout_seconds(exc: httpx.TimeoutException) -> float | None:
    """The timeout that expired, read from the request httpx attached to the error."""
    phase = {
        httpx.ConnectTimeout: "connect",
        httpx.ReadTimeout: "read",
        httpx.WriteTimeout: "write",
        httpx.PoolTimeout: "pool",
    }.get(type(exc))
    try:
        timeouts = exc.request.extensions.get("timeout", {})
    except RuntimeError:  # no request attached
        return None
    value = timeouts.get(phase) if phase else None
    return float(value) if isinstance(value, int | float) else None


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _aiohttp_errors(chain: Iterable[BaseException]) -> list[aiohttp.ClientError]:
    """aiohttp's own errors in the chain. The httpx-aiohttp transport re-raises them under
    coarse httpx types (a refused connection or a read timeout as ``ConnectTimeout``), so
    when one is there it, not the httpx type, says what happened."""
    return [c for c in chain if isinstance(c, aiohttp.ClientError)]


def is_timeout(exc: BaseException) -> bool:
    """True when the request ended because a timeout expired (in any layer)."""
    chain = _causes(exc)
    if any(isinstance(c, TimeoutError) for c in chain):
        return True
    return isinstance(exc, httpx.TimeoutException) and not _aiohttp_errors(chain)


def describe_failure(exc: BaseException) -> str:
    """What happened to a request that got no HTTP answer, in one short sentence.

    The cause chain is read first: a transport may report a refused or dropped connection
    under a generic (even a timeout) exception type, and the operating system's error says
    what it was.
    """
    if isinstance(exc, DestinationRefused):
        return short_reason(f"destination refused: {exc.reason}")
    if isinstance(exc, DestinationUnresolvable):
        return short_reason(f"DNS lookup failed: {exc}")
    chain = _causes(exc)
    for cause in chain:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the receiver"
        if isinstance(cause, ssl.SSLError):
            return short_reason(f"TLS failed: {cause}")
        if isinstance(cause, aiohttp.ServerDisconnectedError):
            return "receiver closed the connection without an answer"
        if isinstance(cause, aiohttp.ClientResponseError):
            # Its text names the request URL (query string included): use the message only.
            return short_reason(f"receiver broke the HTTP protocol: {cause.message}")
    if is_timeout(exc):
        seconds = _timeout_seconds(exc) if isinstance(exc, httpx.TimeoutException) else None
        from_aiohttp = _aiohttp_errors(chain)
        connecting = (
            any(isinstance(c, aiohttp.ConnectionTimeoutError) for c in from_aiohttp)
            if from_aiohttp
            else isinstance(exc, httpx.ConnectTimeout)
        )
        reason = "timed out connecting" if connecting else "timed out"
        return reason + (f" after {seconds} s" if seconds is not None else "")
    text = str(exc)
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    if isinstance(exc, httpx.RemoteProtocolError):
        return short_reason(f"receiver broke the HTTP protocol: {text}")
    if isinstance(exc, httpx.ConnectError):
        return short_reason(f"could not connect: {text}")
    return short_reason(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
