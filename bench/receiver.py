"""A fast webhook receiver for benchmarks, run as its own process.

    python bench/receiver.py            # prints one JSON line: {"healthy": port, "hang": port}

Two servers on 127.0.0.1, both on one asyncio (uvloop when installed) event loop:

* healthy: a raw HTTP/1.1 server (httptools parser, keep-alive) that answers every request
  ``200 ok`` at once and records ``(webhook-id, arrival time.time(), path)``. It does no
  signature check, no JSON parsing and no logging, so one core serves well over 10,000
  requests/s: it is not the bottleneck of a delivery benchmark. Control paths (never
  recorded): ``GET /_records`` (everything recorded so far, JSON) and ``POST /_reset``.
* hang: accepts TCP connections, reads and discards what is sent, never answers. It counts
  connections; ``GET /_hang`` on the healthy port reports the counts.

The process exits on SIGTERM/SIGINT, or when its stdin closes (the benchmark died).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

import httptools

RECORDS: list[tuple[str | None, float, str]] = []
HANG = {"connections": 0, "open": 0, "bytes": 0}

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
_OK_CLOSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)


def _json_response(data: object) -> bytes:
    body = json.dumps(data).encode()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


class HealthyProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.webhook_id: str | None = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.webhook_id = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"webhook-id":
            self.webhook_id = value.decode()

    def on_message_complete(self) -> None:
        now = time.time()
        path = self.url.decode(errors="replace")
        keep_alive = self.parser.should_keep_alive()
        if path.startswith("/_"):
            self.transport.write(self._control(path))
        else:
            RECORDS.append((self.webhook_id, now, path))
            self.transport.write(_OK if keep_alive else _OK_CLOSE)
        if not keep_alive:
            self.transport.close()

    def _control(self, path: str) -> bytes:
        if path.startswith("/_records"):
            return _json_response({"records": RECORDS})
        if path.startswith("/_reset"):
            RECORDS.clear()
            HANG.update(connections=0, bytes=0)
            return _json_response({"ok": True})
        if path.startswith("/_hang"):
            return _json_response(HANG)
        return _json_response({"error": "unknown control path"})


class HangProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        HANG["connections"] += 1
        HANG["open"] += 1

    def data_received(self, data: bytes) -> None:
        HANG["bytes"] += len(data)

    def connection_lost(self, exc: Exception | None) -> None:
        HANG["open"] -= 1


async def main() -> None:
    loop = asyncio.get_running_loop()
    healthy = await loop.create_server(HealthyProtocol, "127.0.0.1", 0, backlog=4096)
    hang = await loop.create_server(HangProtocol, "127.0.0.1", 0, backlog=4096)
    ports = {
        "healthy": healthy.sockets[0].getsockname()[1],
        "hang": hang.sockets[0].getsockname()[1],
        "pid": os.getpid(),
    }
    print(json.dumps(ports), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Exit when the parent goes away (stdin is a pipe from the benchmark).
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(0, 1024) else None)
    await stop.wait()
    healthy.close()
    hang.close()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - plain asyncio is fast enough too
        pass
    asyncio.run(main())
