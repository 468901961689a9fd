"""The delivery service's HTTP client (httpx on aiohttp's pool) against real loopback sockets:
what each transport failure is called in the delivery log, that no cookie is kept, and that
the destination policy is applied to every connection it opens."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from netpulse.net.client import is_timeout, make_client, remote_ip
from netpulse.net.ssrf import DestinationPolicy, DestinationRefused
from netpulse.webhooks.callers import AttemptOutcome
from netpulse.webhooks.delivery import retry
from tests.support.receiver import Receiver

LOOPBACK_ALLOWED = DestinationPolicy.from_lists(allow=["127.0.0.0/8"])


def _post(url: str, timeout: float = 5.0) -> BaseException | httpx.Response:
    async def main() -> BaseException | httpx.Response:
        client = make_client(LOOPBACK_ALLOWED, 4)
        try:
            return await client.post(url, content=b"{}", timeout=timeout)
        except Exception as exc:
            return exc
        finally:
            await client.aclose()

    return asyncio.run(main())


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock
    finally:
        sock.close()


def test_closed_port_is_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = _post(f"http://127.0.0.1:{port}/")
    assert isinstance(error, Exception)
    assert retry.classify_exception(error) == AttemptOutcome("retry", "connection refused")
    assert not is_timeout(error)


def test_receiver_that_never_answers_is_a_timeout_not_a_connect_failure(
    listening_socket: socket.socket,
) -> None:
    port = listening_socket.getsockname()[1]
    error = _post(f"http://127.0.0.1:{port}/", timeout=0.3)
    assert isinstance(error, Exception)
    assert is_timeout(error)
    verdict = retry.classify_exception(error)
    assert verdict.verdict == "retry" and verdict.reason.startswith("timed out")
    assert "connecting" not in verdict.reason


def test_receiver_that_hangs_up_without_answering(listening_socket: socket.socket) -> None:
    def hang_up() -> None:
        conn, _ = listening_socket.accept()
        conn.recv(65536)
        conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    error = _post(f"http://127.0.0.1:{listening_socket.getsockname()[1]}/")
    thread.join(5)
    assert isinstance(error, Exception)
    verdict = retry.classify_exception(error)
    assert verdict == AttemptOutcome("retry", "receiver closed the connection without an answer")
    assert not is_timeout(error)


def test_cookies_a_receiver_sets_are_never_sent_back(receiver: Receiver) -> None:
    receiver.behave("/c", headers={"Set-Cookie": "planted=1; Path=/"})

    async def main() -> None:
        client = make_client(LOOPBACK_ALLOWED, 4)
        try:
            for _ in range(2):
                (await client.post(receiver.url("/c"), content=b"{}")).raise_for_status()
        finally:
            await client.aclose()

    asyncio.run(main())
    first, second = receiver.wait_for("/c", count=2)
    assert "cookie" not in first.headers and "cookie" not in second.headers


def _post_with(policy: DestinationPolicy, url: str) -> BaseException | httpx.Response:
    async def main() -> BaseException | httpx.Response:
        client = make_client(policy, 4)
        try:
            return await client.post(url, content=b"{}")
        except Exception as exc:
            return exc
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_the_client_refuses_what_the_policy_refuses_and_sends_nothing(
    receiver: Receiver,
) -> None:
    default = DestinationPolicy.from_lists()  # loopback refused
    by_address = _post_with(default, receiver.url("/x"))
    assert isinstance(by_address, DestinationRefused), by_address
    assert "loopback" in by_address.reason
    by_name = _post_with(default, f"http://localhost:{receiver.port}/x")
    assert isinstance(by_name, DestinationRefused), by_name
    only_other = DestinationPolicy.from_lists(allow=["127.0.0.2/32"])
    assert isinstance(_post_with(only_other, receiver.url("/x")), DestinationRefused)
    assert receiver.received == []
    outcome = retry.classify_exception(by_address)
    assert outcome.verdict == "give_up" and outcome.refused


def test_the_client_reports_the_address_it_connected_to(receiver: Receiver) -> None:
    reply = _post_with(LOOPBACK_ALLOWED, f"http://localhost:{receiver.port}/ok")
    assert isinstance(reply, httpx.Response) and reply.status_code == 200
    assert remote_ip(reply) in ("127.0.0.1", "::1")
    assert len(receiver.wait_for("/ok")) == 1
