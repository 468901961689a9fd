"""The HTTP client the delivery service shares between all deliveries (and custom callers).

It is an ``httpx.AsyncClient`` (the API callers are written against) on aiohttp's connection
pool through the ``httpx-aiohttp`` transport. Measured on this project's 2-core machine, one
keep-alive POST costs about 1.3 ms of CPU through httpx's default transport and about 0.3 ms
through this one (``bench/RESULTS.md``); at 1,000 deliveries per second that is the
difference between a saturated core and a quarter of one. The request extensions httpx
defines (``sni_hostname`` for connections pinned to a checked IP, timeouts) carry through.

Received cookies are never kept: every attempt is independent, and one receiver must not be
able to plant a cookie that a later delivery (maybe another user's) would send.
"""

from __future__ import annotations

from http.cookiejar import DefaultCookiePolicy

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


def make_client(max_connections: int) -> httpx.AsyncClient:
    """A client with up to ``max_connections`` connections, kept alive between deliveries;
    redirects are never followed and no proxy or other environment setting applies."""
    ssl_context = httpx.create_ssl_context(trust_env=False)

    def session() -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop (aiohttp requires one).
        connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, ssl=ssl_context)
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
        )

    client = httpx.AsyncClient(
        transport=AiohttpTransport(client=session), follow_redirects=False, trust_env=False
    )
    # httpx copies a jar given to it (and drops its policy), so set the policy in place.
    client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return client
