"""The webhook listener served by uvicorn on loopback, fed by real signed HTTP requests."""

from __future__ import annotations

import io
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from rich.console import Console

from netpulse.cli.listener import ReceivedEvent, create_listener_app
from netpulse.webhooks.signing import build_headers, generate_secret

SECRET = generate_secret()
EVENT = {
    "id": "job-42",
    "status": "finished",
    "event_type": "job.completed",
    "final": True,
    "result": {
        "type": "successful",
        "retval": [{"command": "show version", "stdout": "Cisco IOS XE 17.9 [markup?]"}],
        "error": None,
    },
}
BODY = json.dumps(EVENT).encode()


@dataclass
class Listener:
    url: str
    output: io.StringIO
    events: queue.Queue[ReceivedEvent]

    def printed(self) -> str:
        return self.output.getvalue()


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)


def _serve(secret: str | None) -> Iterator[Listener]:
    output = io.StringIO()
    events: queue.Queue[ReceivedEvent] = queue.Queue()
    app = create_listener_app(
        secret, console=Console(file=output, width=200, color_system=None), on_event=events.put
    )
    # Bind first and hand the socket to uvicorn: the port is ours, no race with other tests.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _wait_until(lambda: server.started or not thread.is_alive())
        assert server.started, "uvicorn did not start"
        yield Listener(f"http://127.0.0.1:{port}", output, events)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def verifying() -> Iterator[Listener]:
    yield from _serve(SECRET)


@pytest.fixture
def open_listener() -> Iterator[Listener]:
    yield from _serve(None)


def _post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=10) as client:
        return client.post(url, content=body, headers=headers)


def test_signed_event_is_printed_as_valid(verifying: Listener) -> None:
    headers = build_headers("msg_signed", BODY, [SECRET])
    response = _post(f"{verifying.url}/hooks/netpulse?src=test", BODY, headers)
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    event = verifying.events.get(timeout=10)
    assert event.signature == "valid"
    printed = verifying.printed()
    assert "POST /hooks/netpulse?src=test" in printed
    assert "id=msg_signed" in printed
    assert "event=job.completed" in printed
    assert "status=finished" in printed
    assert "-> 200" in printed
    assert "signature: valid" in printed
    assert "result: successful: Cisco IOS XE 17.9 [markup?]" in printed


def test_rotated_keys_still_verify(verifying: Listener) -> None:
    headers = build_headers("msg_rotated", BODY, [generate_secret(), SECRET])
    assert _post(verifying.url, BODY, headers).status_code == 200
    assert verifying.events.get(timeout=10).signature == "valid"


def test_tampered_body_is_invalid_and_refused(verifying: Listener) -> None:
    headers = build_headers("msg_tampered", BODY, [SECRET])
    tampered = BODY.replace(b"finished", b"failed!!")
    response = _post(verifying.url, tampered, headers)
    assert response.status_code == 401
    assert verifying.events.get(timeout=10).signature == "INVALID"
    printed = verifying.printed()
    assert "id=msg_tampered" in printed
    assert "-> 401" in printed
    assert "signature: INVALID (No matching signature found)" in printed


def test_unsigned_event_is_invalid_when_a_secret_is_set(verifying: Listener) -> None:
    response = _post(verifying.url, BODY, build_headers("msg_unsigned", BODY, []))
    assert response.status_code == 401
    assert "signature: INVALID (request is not signed)" in verifying.printed()


def test_stale_signature_is_invalid(verifying: Listener) -> None:
    headers = build_headers("msg_old", BODY, [SECRET], now=time.time() - 3600)
    assert _post(verifying.url, BODY, headers).status_code == 401
    assert "signature: INVALID (Message timestamp too old)" in verifying.printed()


def test_without_secret_everything_is_accepted(open_listener: Listener) -> None:
    unsigned = _post(open_listener.url + "/x", BODY, build_headers("msg_a", BODY, []))
    signed = _post(open_listener.url + "/y", BODY, build_headers("msg_b", BODY, [SECRET]))
    assert unsigned.status_code == signed.status_code == 200
    printed = open_listener.printed()
    assert "signature: not signed" in printed
    assert "signature: not checked" in printed


def test_any_method_and_non_json_body(open_listener: Listener) -> None:
    with httpx.Client(trust_env=False, timeout=10) as client:
        put = client.put(open_listener.url + "/a/b", content=b"plain text\nresult")
        get = client.get(open_listener.url + "/")
    assert put.status_code == get.status_code == 200
    printed = open_listener.printed()
    assert "PUT /a/b  id=-  event=-  status=-" in printed
    assert "result: plain text result" in printed
    assert "GET /  id=-" in printed
    assert "result: (empty body)" in printed


def test_text_form_payload_preview(open_listener: Listener) -> None:
    body = json.dumps(
        {"id": "j", "status": "failed", "event_type": "job.failed", "result": "Timeout: no prompt"}
    ).encode()
    assert _post(open_listener.url, body, {}).status_code == 200
    assert "result: Timeout: no prompt" in open_listener.printed()


def test_bad_secret_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        create_listener_app("hunter2")
