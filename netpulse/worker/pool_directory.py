"""Which FIFO worker pools are alive (one entry per ``netpulse worker fifo`` process).

Keys (prefix ``netpulse:``):
- ``fifo-pools``               hash pool id -> JSON {hostname, pid, started_at, size};
- ``fifo-pool:<id>:alive``     heartbeat, expires ``HEARTBEAT_TTL`` s after the last beat.

A pool id is fresh for every pool process (its instance), so a pool restarted on the same host
is never mistaken for the one that died.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass

from redis import Redis

from netpulse.runtime.redis_conn import redis_text

POOLS = "netpulse:fifo-pools"
HEARTBEAT_TTL = 10
HEARTBEAT_INTERVAL = 2.0


def pool_alive_key(pool_id: str) -> str:
    return f"netpulse:fifo-pool:{pool_id}:alive"


@dataclass
class PoolInfo:
    pool_id: str
    hostname: str
    pid: int
    started_at: float
    size: int
    alive: bool


class PoolDirectory:
    def __init__(self, conn: Redis) -> None:
        self.conn = conn

    def register(self, pool_id: str, size: int) -> None:
        info = {
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": time.time(),
            "size": size,
        }
        pipe = self.conn.pipeline()
        pipe.hset(POOLS, pool_id, json.dumps(info))
        pipe.set(pool_alive_key(pool_id), "1", ex=HEARTBEAT_TTL)
        pipe.execute()

    def heartbeat(self, pool_id: str) -> None:
        self.conn.set(pool_alive_key(pool_id), "1", ex=HEARTBEAT_TTL)

    def heartbeat_known(self, pool_id: str) -> bool:
        """Beat; False when the pool's registration is missing (Redis lost its data, or
        another pool took this one for dead), so the caller registers again."""
        pipe = self.conn.pipeline()
        pipe.set(pool_alive_key(pool_id), "1", ex=HEARTBEAT_TTL)
        pipe.hexists(POOLS, pool_id)
        return bool(pipe.execute()[1])

    def forget(self, pool_id: str) -> None:
        pipe = self.conn.pipeline()
        pipe.hdel(POOLS, pool_id)
        pipe.delete(pool_alive_key(pool_id))
        pipe.execute()

    def pools(self) -> list[PoolInfo]:
        raw = self.conn.hgetall(POOLS)
        ids = sorted(redis_text(k) for k in raw)
        pipe = self.conn.pipeline()
        for pool_id in ids:
            pipe.exists(pool_alive_key(pool_id))
        alive = pipe.execute()
        found = []
        for pool_id, is_alive in zip(ids, alive, strict=True):
            info = json.loads(raw[pool_id.encode()])
            found.append(
                PoolInfo(
                    pool_id=pool_id,
                    hostname=info.get("hostname", ""),
                    pid=int(info.get("pid", 0)),
                    started_at=float(info.get("started_at", 0)),
                    size=int(info.get("size", 0)),
                    alive=bool(is_alive),
                )
            )
        return found

    def live_pools(self) -> list[PoolInfo]:
        return [p for p in self.pools() if p.alive]
