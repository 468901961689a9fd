"""The SSRF guard: refused address classes, precedence, resolution and pinning."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from netpulse.net.ssrf import (
    DestinationPolicy,
    DestinationRefused,
    DestinationUnresolvable,
    check_ip,
    check_url,
    pinned_request_args,
    resolve_and_check,
    resolve_and_check_sync,
)

DEFAULT = DestinationPolicy()
LOOPBACK_ALLOWED = DestinationPolicy.from_lists(allow=["127.0.0.0/8"])


# --- check_ip -------------------------------------------------------------------------------

REFUSED_BY_DEFAULT = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("169.254.169.254", "metadata"),
    ("100.100.100.200", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.10", "documentation"),
    ("2001:db8::1", "documentation"),
    ("100::1", "reserved"),
    # IPv6 forms that carry an IPv4 address are judged as that IPv4 address.
    ("::ffff:127.0.0.1", "embeds the IPv4 address 127.0.0.1, which is a loopback"),
    ("::ffff:7f00:1", "loopback"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:0:a9fe:a9fe", "metadata"),  # SIIT-translated form
    ("::127.0.0.1", "loopback"),  # deprecated IPv4-compatible form
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 well-known prefix
    ("64:ff9b::169.254.169.254", "metadata"),
    ("2002:7f00:1::1", "loopback"),  # 6to4
    ("2002:a9fe:a9fe::", "metadata"),
    ("64:ff9b:1::1", "local-use NAT64"),
]


@pytest.mark.parametrize(("ip", "why"), REFUSED_BY_DEFAULT)
def test_refused_by_default(ip: str, why: str) -> None:
    with pytest.raises(DestinationRefused, match=why) as refused:
        check_ip(ip, DEFAULT)
    assert "NETPULSE_WEBHOOKS__ALLOW_CIDRS" in refused.value.reason


def test_reason_is_a_human_sentence() -> None:
    with pytest.raises(DestinationRefused) as refused:
        check_ip("127.0.0.1", DEFAULT)
    assert str(refused.value) == (
        "127.0.0.1 is a loopback address; "
        "allowlist it with NETPULSE_WEBHOOKS__ALLOW_CIDRS to deliver there"
    )


def test_teredo_is_judged_by_the_embedded_client() -> None:
    # Teredo server 65.54.227.120, client 127.0.0.1 (stored inverted in the last 32 bits).
    client_bits = int(ipaddress.IPv4Address("127.0.0.1")) ^ 0xFFFFFFFF
    teredo = ipaddress.IPv6Address((0x20010000 << 96) | (0x4136E378 << 64) | client_bits)
    with pytest.raises(DestinationRefused, match=r"127\.0\.0\.1, which is a loopback"):
        check_ip(teredo, DEFAULT)


@pytest.mark.parametrize(
    "ip",
    [
        "93.184.215.14",
        "8.8.8.8",
        "2606:4700::1111",
        "::ffff:93.184.215.14",
        "2002:5db8:d70e::1",  # 6to4 of a public address
        ipaddress.ip_address("1.1.1.1"),
    ],
)
def test_public_addresses_allowed(ip: str) -> None:
    check_ip(ip, DEFAULT)


PRIVATE = ["10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", "100.64.0.1", "fd12::1"]


@pytest.mark.parametrize("ip", [*PRIVATE, "::ffff:10.0.0.1"])
def test_private_allowed_by_default_refused_with_deny_private(ip: str) -> None:
    check_ip(ip, DEFAULT)
    with pytest.raises(DestinationRefused, match="NETPULSE_WEBHOOKS__DENY_PRIVATE is set"):
        check_ip(ip, DestinationPolicy(deny_private=True))


def test_allowlist_beats_builtin_refusals() -> None:
    for ip in ("127.0.0.1", "127.8.9.10", "::ffff:127.0.0.1", "64:ff9b::7f00:1"):
        check_ip(ip, LOOPBACK_ALLOWED)
    with pytest.raises(DestinationRefused, match="loopback"):
        check_ip("::1", LOOPBACK_ALLOWED)  # allowing IPv4 loopback does not allow ::1
    check_ip("169.254.169.254", DestinationPolicy(allow_cidrs=("169.254.169.254/32",)))


def test_allowlist_beats_deny_private() -> None:
    policy = DestinationPolicy.from_lists("10.1.0.0/16", deny_private=True)
    check_ip("10.1.2.3", policy)
    with pytest.raises(DestinationRefused, match="private"):
        check_ip("10.2.0.1", policy)


def test_denylist_beats_defaults_and_allowlist() -> None:
    policy = DestinationPolicy.from_lists(allow="127.0.0.0/8", deny="127.0.0.5, 93.184.0.0/16")
    check_ip("127.0.0.1", policy)
    with pytest.raises(DestinationRefused, match=r"deny list \(127.0.0.5/32"):
        check_ip("127.0.0.5", policy)
    with pytest.raises(DestinationRefused, match="NETPULSE_WEBHOOKS__DENY_CIDRS"):
        check_ip("93.184.215.14", policy)
    with pytest.raises(DestinationRefused, match=r"embedding 93\.184\.215\.14"):
        check_ip("::ffff:93.184.215.14", policy)


def test_denylist_matches_the_ipv6_form_too() -> None:
    policy = DestinationPolicy.from_lists(deny=["64:ff9b::/96"])
    with pytest.raises(DestinationRefused, match="deny list"):
        check_ip("64:ff9b::808:808", policy)


def test_policy_normalises_and_validates_cidrs() -> None:
    policy = DestinationPolicy.from_lists(["127.0.0.1/8", " ::1 "], None)
    assert policy.allow_cidrs == ("127.0.0.0/8", "::1/128")
    assert policy == DestinationPolicy(allow_cidrs=("127.0.0.0/8", "::1/128"))
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300/8' in NETPULSE_WEBHOOKS__ALLOW_CIDRS"):
        DestinationPolicy.from_lists(allow=["10.0.0.0/8", "10.0.0.300/8"])
    with pytest.raises(ValueError, match=r"'example\.com' in NETPULSE_WEBHOOKS__DENY_CIDRS"):
        DestinationPolicy(deny_cidrs=("example.com",))


def test_check_ip_rejects_non_addresses() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        check_ip("localhost", DEFAULT)


# --- resolution -----------------------------------------------------------------------------


def _fake_resolver(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Replace socket.getaddrinfo (used by the loop too) so no test talks to a DNS server."""
    asked: list[str] = []

    def fake(host: str, port: int, *args: object, **kwargs: object) -> list[tuple]:
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port),
            )
            for ip in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def test_resolution_keeps_allowed_addresses_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_resolver(
        monkeypatch,
        {"hooks.example": ["10.0.0.2", "127.0.0.1", "93.184.215.14", "10.0.0.2", "::1"]},
    )
    expected = ["10.0.0.2", "93.184.215.14"]
    assert asyncio.run(resolve_and_check("hooks.example", 443, DEFAULT)) == expected
    assert resolve_and_check_sync("hooks.example", 443, DEFAULT) == expected


def test_rebinding_name_pointing_at_metadata_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_resolver(monkeypatch, {"rebind.example": ["169.254.169.254", "::ffff:127.0.0.1"]})
    for call in (
        lambda: asyncio.run(resolve_and_check("rebind.example", 80, DEFAULT)),
        lambda: resolve_and_check_sync("rebind.example", 80, DEFAULT),
    ):
        with pytest.raises(DestinationRefused) as refused:
            call()
        assert refused.value.reason.startswith(
            "rebind.example resolves only to refused addresses: "
            "169.254.169.254 is a cloud metadata service address"
        )
        assert refused.value.reason.endswith("and 1 more refused address(es)")


def test_dns_failure_is_unresolvable(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_resolver(monkeypatch, {})
    with pytest.raises(DestinationUnresolvable, match=r"cannot resolve nowhere\.example"):
        asyncio.run(resolve_and_check("nowhere.example", 80, DEFAULT))
    with pytest.raises(DestinationUnresolvable) as failed:
        resolve_and_check_sync("nowhere.example", 80, DEFAULT)
    assert failed.value.host == "nowhere.example"


def test_ip_literals_skip_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _fake_resolver(monkeypatch, {})
    assert asyncio.run(resolve_and_check("127.0.0.1", 80, LOOPBACK_ALLOWED)) == ["127.0.0.1"]
    assert resolve_and_check_sync("[2606:4700::1111]", 80, DEFAULT) == ["2606:4700::1111"]
    with pytest.raises(DestinationRefused, match=r"^::1 is a loopback address"):
        resolve_and_check_sync("::1", 80, DEFAULT)
    assert asked == []


def test_real_resolver_on_localhost() -> None:
    # /etc/hosts only; the resolved address is what is judged, not the name.
    assert "127.0.0.1" in resolve_and_check_sync("localhost", 80, LOOPBACK_ALLOWED)
    with pytest.raises(DestinationRefused, match="loopback"):
        asyncio.run(resolve_and_check("localhost", 80, DEFAULT))


def test_numeric_host_spellings_are_judged_after_resolution() -> None:
    # inet_aton forms: no DNS involved, and they still land on loopback.
    for host in ("2130706433", "127.1", "0x7f.0.0.1"):
        with pytest.raises(DestinationRefused, match=r"127\.0\.0\.1 is a loopback"):
            resolve_and_check_sync(host, 80, DEFAULT)


# --- URLs and pinning -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example.com/x", ("https", "hooks.example.com", 443)),
        ("HTTP://Hooks.Example.com:8080/x?y=1", ("http", "hooks.example.com", 8080)),
        ("http://[::1]:9999/", ("http", "::1", 9999)),
        ("https://bücher.example/", ("https", "xn--bcher-kva.example", 443)),
        ("http://2130706433/", ("http", "2130706433", 80)),
    ],
)
def test_check_url_accepts(url: str, expected: tuple[str, str, int]) -> None:
    assert check_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "must use http or https, not ftp"),
        ("file:///etc/passwd", "must use http or https"),
        ("gopher://127.0.0.1:6379/_INFO", "must use http or https"),
        ("//example.com/x", "not no scheme"),
        ("http:///path", "has no host"),
        ("https://hooks.example.com@evil.example/", "credentials"),
        ("https://user:pw@hooks.example.com/", "auth field"),
        ("http://evil.example\\@hooks.example.com/", "credentials"),
        ("http://example.com:0/", "invalid port"),
        ("http://exa mple.com/", "invalid host name 'exa%20mple.com'"),
        ("http://ex..com/", "invalid host name"),
        ("http://[fe80::1%25eth0]/", "zone id"),
        ("http://[::1/", "not a valid URL"),
    ],
)
def test_check_url_refuses(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_url(url)


def test_pinned_args_for_https_keep_name_in_host_and_sni() -> None:
    url, headers, extensions = pinned_request_args(
        "https://hooks.example.com/in?x=1", "93.184.215.14"
    )
    assert url == "https://93.184.215.14/in?x=1"
    assert headers == {"Host": "hooks.example.com"}
    assert extensions == {"sni_hostname": "hooks.example.com"}


def test_pinned_args_bracket_ipv6_and_keep_port() -> None:
    url, headers, extensions = pinned_request_args("http://hooks.example.com:8080/a", "2001:db8::5")
    assert url == "http://[2001:db8::5]:8080/a"
    assert headers == {"Host": "hooks.example.com:8080"}
    assert extensions == {}


def test_pinned_args_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        pinned_request_args("http://hooks.example.com/", "hooks.example.com")
    with pytest.raises(ValueError, match="http or https"):
        pinned_request_args("ftp://hooks.example.com/", "93.184.215.14")


class _EchoHost(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"{self.headers['Host']} {self.client_address[0]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHost)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_pinned_request_reaches_the_ip_with_original_host(echo_server: int) -> None:
    original = f"http://localhost:{echo_server}/hook"
    _scheme, host, port = check_url(original)
    ip = resolve_and_check_sync(host, port, LOOPBACK_ALLOWED)[0]
    url, headers, extensions = pinned_request_args(original, ip)
    with httpx.Client(trust_env=False, follow_redirects=False) as client:
        response = client.get(url, headers=headers, extensions=extensions)
    assert response.status_code == 200
    assert response.text == f"localhost:{echo_server} 127.0.0.1"
