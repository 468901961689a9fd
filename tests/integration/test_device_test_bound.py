"""`POST /device/test` cannot starve the API: tests to a device that never answers take their
own few threads; one more is refused at once (503), and other routes answer meanwhile."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import API_KEY

SLOTS = 8  # server.max_device_tests, default


class SilentServer:
    """Accepts TCP connections and never says a word (an SSH server that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted.append(conn)
                self._lock.notify_all()

    def wait_for(self, count: int, timeout: float) -> None:
        with self._lock:
            assert self._lock.wait_for(lambda: len(self.accepted) >= count, timeout), (
                f"{len(self.accepted)} of {count} connections came"
            )

    def close(self) -> None:
        self.sock.close()
        with self._lock:
            for conn in self.accepted:
                conn.close()


def test_connection_tests_take_their_own_threads_and_refuse_beyond(controller_url: str) -> None:
    server = SilentServer()
    body: dict[str, Any] = {
        "driver": "paramiko",
        "connection_args": {
            "host": "127.0.0.1",
            "port": server.port,
            "username": "u",
            "password": "p",
            "timeout": 60,
        },
    }
    client = httpx.Client(base_url=controller_url, headers={"X-API-KEY": API_KEY}, timeout=90)
    pool = ThreadPoolExecutor(max_workers=SLOTS)
    try:
        hanging = [pool.submit(client.post, "/device/test", json=body) for _ in range(SLOTS)]
        server.wait_for(SLOTS, timeout=30)  # every slot is now held by a silent device
        refused = client.post("/device/test", json=body)
        assert refused.status_code == 503, refused.text
        assert "server.max_device_tests" in refused.json()["detail"]
        assert refused.headers["retry-after"]
        # The rest of the API answers while the tests hang (they used to take its threads).
        assert client.get("/jobs", params={"limit": 1}).status_code == 200
        assert client.get("/health").status_code == 200
        assert not any(f.done() for f in hanging), "a test ended before its device let go"
        server.close()  # the devices hang up: each test ends with a clear failure
        for future in hanging:
            reply = future.result(timeout=60)
            assert reply.status_code == 200, reply.text
            assert reply.json()["success"] is False
    finally:
        server.close()
        pool.shutdown(wait=False, cancel_futures=True)
        client.close()
