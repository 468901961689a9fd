"""A real HTTP webhook receiver on loopback that records what it gets.

Each path can be told how to answer (status, headers, delay, body), so tests can play a
healthy, failing, slow, hanging or redirecting receiver. Tests await conditions on it
(`wait_for`) instead of sleeping.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


@dataclass
class Received:
    method: str
    path: str
    #: case-insensitive, as HTTP header names are (the sender may send them in lower case)
    headers: httpx.Headers
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Behaviour:
    statuses: list[int] = field(default_factory=lambda: [200])  # consumed in order, last repeats
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: bytes = b"ok"


class Receiver:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.received: list[Received] = []
        self.behaviours: dict[str, Behaviour] = {}
        self._cond = threading.Condition()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                item = Received(
                    self.command, self.path, httpx.Headers(self.headers.items()), body, time.time()
                )
                with receiver._cond:
                    receiver.received.append(item)
                    receiver._cond.notify_all()
                behaviour = receiver.behaviours.get(path, Behaviour())
                if behaviour.delay:
                    receiver._release.wait(behaviour.delay)
                status = behaviour.statuses[0]
                if len(behaviour.statuses) > 1:
                    behaviour.statuses.pop(0)
                self.send_response(status)
                for key, value in behaviour.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(behaviour.body)))
                self.end_headers()
                self.wfile.write(behaviour.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host, self.port = self.server.server_address[:2]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def behave(self, path: str, **kwargs: Any) -> None:
        self.behaviours[path] = Behaviour(**kwargs)

    def on(self, path: str) -> list[Received]:
        with self._cond:
            return [r for r in self.received if r.path.split("?")[0] == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 20.0) -> list[Received]:
        """Block until ``count`` requests reached ``path``; fail the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.received if r.path.split("?")[0] == path]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"receiver got {len(got)} of {count} request(s) on {path} in {timeout} s"
                    )
                self._cond.wait(left)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
