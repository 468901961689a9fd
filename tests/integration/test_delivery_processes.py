"""Several delivery processes: `netpulse worker webhooks --processes 2` runs two event loops
that share the work through Redis (each delivery once), stop together on SIGTERM, and die
with their parent when it is killed. `netpulse up`'s scaler starts and stops extra ones
with the backlog (its rule is unit-tested in tests/unit/test_delivery_scaler.py)."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Any

from redis import Redis

from netpulse.runtime.redis_server import RedisServer
from netpulse.webhooks.delivery.heartbeat import SERVICES
from tests.support import processes, proctree
from tests.support.delivery import record_success, request_with_webhook
from tests.support.receiver import Receiver


def _env(base: dict[str, str], redis_url: str, data_dir: Path) -> dict[str, str]:
    return {**base, "NETPULSE_REDIS__URL": redis_url, "NETPULSE_DATA_DIR": str(data_dir)}


def test_two_processes_share_the_work_and_stop_together(
    netpulse_env: dict[str, str], tmp_path: Path, receiver: Receiver
) -> None:
    with RedisServer(data_dir=tmp_path / "redis", appendonly=False) as server:
        conn = Redis.from_url(server.url)
        env = {
            **netpulse_env,
            "NETPULSE_REDIS__URL": server.url,
            "NETPULSE_DATA_DIR": str(tmp_path),
        }
        parent = processes.start(
            ["worker", "webhooks", "--processes", "2"], env, tmp_path / "d.log"
        )
        try:
            processes.wait_until(lambda: conn.zcard(SERVICES) == 2, 30, "two delivery loops")
            family = proctree.descendants(parent.pid)
            assert len(family) >= 1  # the forked one
            req = request_with_webhook({"url": receiver.url("/shared")})
            ids = [str(uuid.uuid4()) for _ in range(300)]
            for job_id in ids:
                assert record_success(conn, job_id, req) is not None
            got = receiver.wait_for("/shared", count=len(ids), timeout=60)
            assert sorted(g.json()["id"] for g in got) == sorted(ids)  # each once
        finally:
            parent.send_signal(signal.SIGTERM)
            parent.wait(40)
        processes.wait_until(
            lambda: not [p for p in family if proctree.alive(p)], 30, "the forked loop to stop"
        )
        assert parent.returncode == 0


def test_the_forked_process_dies_with_a_killed_parent(
    netpulse_env: dict[str, str], tmp_path: Path
) -> None:
    with RedisServer(data_dir=tmp_path / "redis", appendonly=False) as server:
        conn = Redis.from_url(server.url)
        env = {
            **netpulse_env,
            "NETPULSE_REDIS__URL": server.url,
            "NETPULSE_DATA_DIR": str(tmp_path),
        }
        parent = processes.start(
            ["worker", "webhooks", "--processes", "3"], env, tmp_path / "d.log"
        )
        processes.wait_until(lambda: conn.zcard(SERVICES) == 3, 30, "three delivery loops")
        family: Any = proctree.descendants(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        processes.wait_until(
            lambda: not [p for p in family if proctree.alive(p)], 30, "the forked loops to die"
        )
