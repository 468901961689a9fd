"""SSRF guard: decide whether NetPulse may send a request to an IP address.

Used for webhook deliveries and template downloads, the two places where a client's URL makes
this server connect somewhere. A URL check alone is not enough: a hostname can resolve to
127.0.0.1 or to the cloud metadata service, and can resolve differently a second later (DNS
rebinding). So the guard judges the *resolved* addresses and the connection goes to one of
those exact addresses ("pinning"), with the original name in the Host header and TLS SNI.

The clients of :mod:`netpulse.net.client` apply this module to every connection they open;
code that sends through them needs nothing from here. The functions stay public for checks
made before sending (``check_url`` when a request is validated) and for the tests.

Precedence, strongest first:

1. ``deny_cidrs`` (operator denylist) refuse;
2. ``allow_cidrs`` (operator allowlist) accept, even loopback or link-local;
3. built-in refusals: loopback, link-local, cloud metadata, unspecified, multicast,
   broadcast, reserved and documentation ranges, anything outside IPv6 global unicast;
4. private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) refused only with
   ``deny_private``: network automation often notifies internal systems;
5. everything else is accepted.

An IPv6 address that embeds an IPv4 address (IPv4-mapped, IPv4-compatible, SIIT, NAT64
64:ff9b::/96, 6to4, Teredo) is judged as the IPv4 address inside, because that is where the
packets end up; ``deny_cidrs`` are matched against both forms.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_SETTING = "NETPULSE_WEBHOOKS__ALLOW_CIDRS"
DENY_SETTING = "NETPULSE_WEBHOOKS__DENY_CIDRS"
DENY_PRIVATE_SETTING = "NETPULSE_WEBHOOKS__DENY_PRIVATE"

DEFAULT_PORTS = {"http": 80, "https": 443}


class DestinationRefused(Exception):
    """The destination address is not allowed by the policy; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DestinationUnresolvable(Exception):
    """The destination host name could not be resolved to any address."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"cannot resolve {host}: {reason}")
        self.host = host
        self.reason = reason


def _table(*rows: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(cidr), what) for cidr, what in rows)


# Order matters: the first matching row names the reason (metadata before link-local, etc.).
_REFUSED = _table(
    ("169.254.169.254/32", "a cloud metadata service address"),
    ("100.100.100.200/32", "a cloud metadata service address (Alibaba Cloud)"),
    ("fd00:ec2::254/128", "a cloud metadata service address (AWS IPv6)"),
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("::/128", "the unspecified address"),
    ("127.0.0.0/8", "a loopback address"),
    ("::1/128", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("fe80::/10", "a link-local address"),
    ("224.0.0.0/4", "a multicast address"),
    ("ff00::/8", "a multicast address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("240.0.0.0/4", "a reserved address (240.0.0.0/4)"),
    ("192.0.0.0/24", "a reserved address (IETF protocol assignments)"),
    ("192.0.2.0/24", "a documentation address (TEST-NET-1)"),
    ("198.51.100.0/24", "a documentation address (TEST-NET-2)"),
    ("203.0.113.0/24", "a documentation address (TEST-NET-3)"),
    ("198.18.0.0/15", "a reserved address (benchmarking)"),
    ("192.88.99.0/24", "a reserved address (deprecated 6to4 relay anycast)"),
    ("2001:db8::/32", "a documentation address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address whose IPv4 destination cannot be known"),
)

_PRIVATE = _table(
    ("10.0.0.0/8", "a private address"),
    ("172.16.0.0/12", "a private address"),
    ("192.168.0.0/16", "a private address"),
    ("100.64.0.0/10", "a carrier-grade NAT (shared) address"),
    ("fc00::/7", "a unique local (private) address"),
    ("fec0::/10", "a site-local (private) address"),
)

_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")


def _parse_networks(entries: Iterable[str], setting: str) -> tuple[IPNetwork, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} in {setting} is not a valid CIDR ({exc}).") from None
    return tuple(networks)


def _split(value: Iterable[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return tuple(str(item).strip() for item in value if str(item).strip())


@dataclass(frozen=True)
class DestinationPolicy:
    """Where webhooks may be delivered; see the module docstring for the precedence."""

    allow_cidrs: tuple[str, ...] = ()
    deny_cidrs: tuple[str, ...] = ()
    deny_private: bool = False
    _allow: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _deny: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        allow = _parse_networks(self.allow_cidrs, ALLOW_SETTING)
        deny = _parse_networks(self.deny_cidrs, DENY_SETTING)
        object.__setattr__(self, "allow_cidrs", tuple(str(n) for n in allow))
        object.__setattr__(self, "deny_cidrs", tuple(str(n) for n in deny))
        object.__setattr__(self, "_allow", allow)
        object.__setattr__(self, "_deny", deny)

    @classmethod
    def from_lists(
        cls,
        allow: Iterable[str] | str | None = None,
        deny: Iterable[str] | str | None = None,
        deny_private: bool = False,
    ) -> DestinationPolicy:
        """Build a policy from lists or comma/space-separated strings (environment values).

        Single addresses are accepted as /32 or /128; host bits are dropped
        ("10.1.2.3/8" becomes "10.0.0.0/8"). Raises ValueError naming the bad entry.
        """
        return cls(_split(allow), _split(deny), bool(deny_private))


def _parse_ip(ip: str | IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return ip
    text = str(ip).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{ip!r} is not an IP address.") from None


def _embedded_ipv4(addr: IPAddress) -> list[ipaddress.IPv4Address]:
    """Return the IPv4 addresses an IPv6 address carries, where packets would really go."""
    if isinstance(addr, ipaddress.IPv4Address):
        return []
    low32 = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr in _IPV4_MAPPED or addr in _IPV4_TRANSLATED or addr in _NAT64_WELL_KNOWN:
        return [low32]
    if addr in _IPV4_COMPATIBLE and int(addr) > 1:  # "::" and "::1" are not IPv4-compatible
        return [low32]
    if addr.sixtofour is not None:
        return [addr.sixtofour]
    if addr.teredo is not None:
        server, client = addr.teredo
        return [client, server]
    return []


def _first_match(addr: IPAddress, networks: Iterable[IPNetwork]) -> IPNetwork | None:
    return next((n for n in networks if n.version == addr.version and addr in n), None)


def _refusal(addr: IPAddress, policy: DestinationPolicy) -> str | None:
    """Judge one address by allowlist, built-ins and deny_private; None means allowed."""
    if _first_match(addr, policy._allow) is not None:
        return None
    hint = f"; allowlist it with {ALLOW_SETTING} to deliver there"
    for network, what in _REFUSED:
        if network.version == addr.version and addr in network:
            return f"is {what}{hint}"
    for network, what in _PRIVATE:
        if network.version == addr.version and addr in network:
            if policy.deny_private:
                return f"is {what} and {DENY_PRIVATE_SETTING} is set{hint}"
            return None
    if isinstance(addr, ipaddress.IPv6Address) and addr not in _IPV6_GLOBAL_UNICAST:
        return f"is outside IPv6 global unicast (2000::/3), so reserved{hint}"
    return None


def check_ip(ip: str | IPAddress, policy: DestinationPolicy) -> None:
    """Raise DestinationRefused if the policy forbids delivering to ``ip``.

    Raises ValueError if ``ip`` is not an IP address at all (a programming error).
    Verdicts are cached per (address, policy): both are immutable, and the delivery service
    asks for the same few receivers thousands of times a second.
    """
    reason = _refusal_of(_parse_ip(ip), policy)
    if reason is not None:
        raise DestinationRefused(reason)


@functools.lru_cache(maxsize=4096)
def _refusal_of(addr: IPAddress, policy: DestinationPolicy) -> str | None:
    try:
        _check_ip_uncached(addr, policy)
    except DestinationRefused as exc:
        return exc.reason
    return None


def _check_ip_uncached(addr: IPAddress, policy: DestinationPolicy) -> None:
    embedded = _embedded_ipv4(addr)
    for candidate in (addr, *embedded):
        denied_by = _first_match(candidate, policy._deny)
        if denied_by is not None:
            inside = f" (embedding {candidate})" if candidate is not addr else ""
            raise DestinationRefused(
                f"{addr}{inside} is in the deny list ({denied_by}, {DENY_SETTING})"
            )
    if not embedded:
        reason = _refusal(addr, policy)
        if reason is not None:
            raise DestinationRefused(f"{addr} {reason}")
        return
    for inner in embedded:
        reason = _refusal(inner, policy)
        if reason is not None:
            raise DestinationRefused(f"{addr} embeds the IPv4 address {inner}, which {reason}")


def ip_literal(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is written as one (IPv6 with or without brackets)."""
    try:
        return _parse_ip(host)
    except ValueError:
        return None


def allowed_addresses(host: str, candidates: Iterable[str], policy: DestinationPolicy) -> list[str]:
    """Keep the allowed addresses among ``host``'s resolved ``candidates``, in resolver order
    (normalised, e.g. IPv6 compressed); raise DestinationRefused if none is allowed, naming
    the first refusal, and DestinationUnresolvable if there is no candidate at all."""
    allowed: list[str] = []
    refused: list[DestinationRefused] = []
    seen: set[str] = set()
    for candidate in candidates:
        ip = str(_parse_ip(candidate))
        if ip in seen:
            continue
        seen.add(ip)
        try:
            check_ip(ip, policy)
        except DestinationRefused as exc:
            refused.append(exc)
        else:
            allowed.append(ip)
    if allowed:
        return allowed
    if not refused:
        raise DestinationUnresolvable(host, "the resolver returned no address")
    first = refused[0].reason
    if ip_literal(host) is not None:
        raise DestinationRefused(first)
    others = f" and {len(refused) - 1} more refused address(es)" if len(refused) > 1 else ""
    raise DestinationRefused(f"{host} resolves only to refused addresses: {first}{others}")


def _sockaddr_hosts(infos: Iterable[tuple[Any, ...]]) -> list[str]:
    return [str(info[4][0]) for info in infos]


async def resolve_and_check(host: str, port: int, policy: DestinationPolicy) -> list[str]:
    """Resolve ``host`` without blocking the event loop and return the allowed IPs.

    IP literals are judged without DNS. Raises DestinationUnresolvable when resolution
    fails, DestinationRefused when no resolved address is allowed. Bound the wait with the
    request timeout (``asyncio.wait_for``): system resolvers can be slow.
    """
    if (literal := ip_literal(host)) is not None:
        return allowed_addresses(host, [str(literal)], policy)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise DestinationUnresolvable(host, resolver_error(exc)) from exc
    return allowed_addresses(host, _sockaddr_hosts(infos), policy)


def resolve_and_check_sync(host: str, port: int, policy: DestinationPolicy) -> list[str]:
    """Blocking twin of :func:`resolve_and_check`, for code that has no event loop."""
    if (literal := ip_literal(host)) is not None:
        return allowed_addresses(host, [str(literal)], policy)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise DestinationUnresolvable(host, resolver_error(exc)) from exc
    return allowed_addresses(host, _sockaddr_hosts(infos), policy)


def resolver_error(exc: BaseException) -> str:
    """A resolver failure as the short text a DestinationUnresolvable carries."""
    if isinstance(exc, socket.gaierror) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# Letters, digits, '-' and '_' (seen in internal names) per label, labels of 1..63 characters,
# an optional final dot. Anything else (spaces, '%', '<') httpx would percent-encode instead.
_HOSTNAME = re.compile(r"(?=.{1,253}\.?$)[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*\.?")


def _parse_url(url: str) -> httpx.URL:
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ValueError(f"{url!r} is not a valid URL ({exc}).") from None


@functools.lru_cache(maxsize=4096)
def check_url(url: str) -> tuple[str, str, int]:
    """Validate a webhook URL's text and return ``(scheme, host, port)``.

    Only http and https; a host is required; credentials in the URL are refused (they would
    be sent as Basic auth and ``https://trusted@evil.example`` misleads readers; the webhook
    ``auth`` field exists for that). The host is returned as httpx will send it (lower case,
    IDNA-encoded, IPv6 without brackets). This does not judge the address: resolve and
    check it with :func:`resolve_and_check`.
    """
    parsed = _parse_url(url)
    if parsed.scheme not in DEFAULT_PORTS:
        shown = parsed.scheme or "no scheme"
        raise ValueError(f"Webhook URLs must use http or https, not {shown}: {url!r}.")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise ValueError(f"Webhook URL {url!r} has no host.")
    if ip_literal(host) is None and not _HOSTNAME.fullmatch(host):
        raise ValueError(f"Webhook URL {url!r} has an invalid host name {host!r}.")
    if "%" in host:
        raise ValueError(f"Webhook URL {url!r} uses an IPv6 zone id, which is not supported.")
    if parsed.userinfo:
        raise ValueError(
            f"Webhook URL {url!r} contains credentials before '@'; "
            "put them in the webhook's auth field instead."
        )
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[parsed.scheme]
    if not 1 <= port <= 65535:
        raise ValueError(f"Webhook URL {url!r} has an invalid port {port}.")
    return parsed.scheme, host, port


def pinned_request_args(url: str, ip: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """Return ``(url_on_ip, headers, extensions)`` to send a request to ``url`` via ``ip``.

    The URL's host is replaced by the checked IP (IPv6 in brackets) so no second DNS lookup
    can swap the destination; the Host header keeps the original name (with the port when it
    is not the default), and for https the ``sni_hostname`` extension makes httpx send the
    original name in TLS SNI and verify the certificate against it. Pass the three values to
    ``httpx.Client.request(method, url, headers=..., extensions=...)``.
    """
    pinned, host_header, sni = _pinned(url, ip)
    return pinned, {"Host": host_header}, ({"sni_hostname": sni} if sni else {})


@functools.lru_cache(maxsize=4096)
def _pinned(url: str, ip: str) -> tuple[str, str, str | None]:
    """The pure part of :func:`pinned_request_args`, cached (it parses the URL twice);
    the public function returns fresh dicts, which httpx may fill in."""
    check_url(url)
    parsed = _parse_url(url)
    addr = _parse_ip(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.scope_id:
        raise ValueError(f"Cannot pin to {ip!r}: scoped IPv6 addresses cannot appear in URLs.")
    pinned = parsed.copy_with(host=str(addr))
    sni = parsed.raw_host.decode("ascii") if parsed.scheme == "https" else None
    return str(pinned), parsed.netloc.decode("ascii"), sni
