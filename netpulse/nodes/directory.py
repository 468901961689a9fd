"""Which nodes are alive, what they hold, and which node owns which pinned device.

Keys (prefix ``netpulse:``):
- ``nodes``                    hash node -> JSON {capacity, hostname, pid, started_at, threads,
                               instance};
- ``node:<name>:alive``        heartbeat: the beating process's instance id, expires
                               ``HEARTBEAT_TTL`` s after the last beat;
- ``node:<name>:draining``     set while a node is being drained (takes no new devices);
- ``node:<name>:devices``      set of device keys (``host:port``) the node holds;
- ``assign``                   hash device key -> node name.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from netpulse.runtime.redis_conn import redis_text
from netpulse.schedulers import NodeLoad
from netpulse.schedulers import registry as schedulers

NODES = "netpulse:nodes"
ASSIGN = "netpulse:assign"
HEARTBEAT_TTL = 10
HEARTBEAT_INTERVAL = 2.0


def alive_key(node: str) -> str:
    return f"netpulse:node:{node}:alive"


def draining_key(node: str) -> str:
    return f"netpulse:node:{node}:draining"


def devices_key(node: str) -> str:
    return f"netpulse:node:{node}:devices"


def node_queue(node: str) -> str:
    return f"NodeQ_{node}"


class NoNodeAvailable(RuntimeError):
    """No live node can take a pinned device."""


#: Move a device to ``new`` only if it still belongs to ``old`` ("" = unassigned).
#: KEYS: assign. ARGV: device, old, new. Returns the owner after the call.
ASSIGN_SCRIPT = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current == false then current = '' end
if current ~= ARGV[2] then return current end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if current ~= '' then
  redis.call('SREM', 'netpulse:node:' .. current .. ':devices', ARGV[1])
end
redis.call('SADD', 'netpulse:node:' .. ARGV[3] .. ':devices', ARGV[1])
return ARGV[3]
"""


#: Let a device go from ``node`` if it is still the owner and no job of the device is let
#: through or held by its rate limit. KEYS: assign, the node's devices, the limit's allowed
#: and rate-limited sets. ARGV: device, node. Returns 1 if released.
RELEASE_SCRIPT = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  redis.call('SREM', KEYS[2], ARGV[1])
  return 0
end
if redis.call('ZCARD', KEYS[3]) > 0 or redis.call('ZCARD', KEYS[4]) > 0 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""


@dataclass
class NodeInfo:
    name: str
    capacity: int
    hostname: str
    pid: int
    started_at: float
    threads: int
    alive: bool
    draining: bool
    devices: list[str]
    instance: str = ""

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "node",
            "status": "draining" if self.draining else ("alive" if self.alive else "lost"),
            "pid": self.pid,
            "hostname": self.hostname,
            "queues": [node_queue(self.name)],
            # An ISO 8601 string, as RQ workers' `birth_at` (the public client reads a string).
            "birth_at": datetime.fromtimestamp(self.started_at, UTC).isoformat(),
            "capacity": self.capacity,
            "threads": self.threads,
            "load": round(len(self.devices) / self.capacity, 4) if self.capacity else None,
            "devices": self.devices,
        }


class NodeDirectory:
    def __init__(self, conn: Redis) -> None:
        self.conn = conn
        self._assign = conn.register_script(ASSIGN_SCRIPT)
        self._release = conn.register_script(RELEASE_SCRIPT)

    # -- a node's own announcements -------------------------------------------------------------

    def register(self, name: str, capacity: int, threads: int, instance: str = "") -> None:
        info = {
            "capacity": capacity,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": time.time(),
            "threads": threads,
            "instance": instance,
        }
        pipe = self.conn.pipeline()
        pipe.hset(NODES, name, json.dumps(info))
        pipe.delete(draining_key(name))
        pipe.set(alive_key(name), instance or "1", ex=HEARTBEAT_TTL)
        pipe.execute()

    def heartbeat(self, name: str, instance: str = "") -> bool:
        """Beat; False when the node's registration is missing (Redis lost its data, or the
        node was failed over while it could not beat), so the node registers again."""
        pipe = self.conn.pipeline()
        pipe.set(alive_key(name), instance or "1", ex=HEARTBEAT_TTL)
        pipe.hexists(NODES, name)
        return bool(pipe.execute()[1])

    def beating_instance(self, name: str) -> str | None:
        """The instance id whose heartbeat is alive for ``name`` (None: nobody beats)."""
        value = self.conn.get(alive_key(name))
        return redis_text(value) if value is not None else None

    def registration(self, name: str) -> NodeInfo | None:
        """The node's entry as last registered, or None."""
        return next((n for n in self.nodes() if n.name == name), None)

    def set_draining(self, name: str) -> None:
        self.conn.set(draining_key(name), "1")

    def is_draining(self, name: str) -> bool:
        return bool(self.conn.exists(draining_key(name)))

    def forget(self, name: str) -> None:
        pipe = self.conn.pipeline()
        pipe.hdel(NODES, name)
        pipe.delete(alive_key(name), draining_key(name), devices_key(name))
        pipe.execute()

    # -- reading ------------------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        raw = self.conn.hgetall(NODES)
        names = sorted(redis_text(n) for n in raw)
        pipe = self.conn.pipeline()
        for name in names:
            pipe.exists(alive_key(name))
            pipe.exists(draining_key(name))
            pipe.smembers(devices_key(name))
        flags = pipe.execute()
        found = []
        for i, name in enumerate(names):
            info = json.loads(raw[name.encode()])
            alive, draining, devices = flags[3 * i : 3 * i + 3]
            found.append(
                NodeInfo(
                    name=name,
                    capacity=int(info["capacity"]),
                    hostname=info.get("hostname", ""),
                    pid=int(info.get("pid", 0)),
                    started_at=float(info.get("started_at", 0)),
                    threads=int(info.get("threads", 0)),
                    alive=bool(alive),
                    draining=bool(draining),
                    devices=sorted(d.decode() for d in devices),
                    instance=str(info.get("instance", "")),
                )
            )
        return found

    def devices_of(self, name: str) -> list[str]:
        return sorted(redis_text(d) for d in self.conn.smembers(devices_key(name)))

    def release(self, device: str, node: str, job_keys: tuple[str, str]) -> bool:
        """Unassign ``device`` from ``node`` unless it has jobs (``job_keys``: its rate
        limit's allowed and rate-limited sets); True if it was released."""
        released = self._release(keys=[ASSIGN, devices_key(node), *job_keys], args=[device, node])
        return bool(int(released))

    def owner(self, device: str) -> str | None:
        value = self.conn.hget(ASSIGN, device)
        return redis_text(value) if value else None

    # -- placing devices ------------------------------------------------------------------------

    def place(self, device: str, scheduler: str = "least_load") -> tuple[str, str | None]:
        """The node that runs ``device``'s pinned jobs, choosing one when it has none alive;
        and the node it had before (None when it had none), so that a caller can move the
        device's waiting jobs when the two differ."""
        current = self.owner(device)
        if current is not None:
            # The common case, on every pinned submission: two key reads in one round trip,
            # not the directory.
            pipe = self.conn.pipeline(transaction=False)
            pipe.exists(alive_key(current))
            pipe.exists(draining_key(current))
            alive, draining = pipe.execute()
            if alive and not draining:
                return current, current
        return self.move(device, current, exclude=set(), scheduler=scheduler), current

    def move(
        self,
        device: str,
        current: str | None,
        exclude: set[str],
        nodes: list[NodeInfo] | None = None,
        scheduler: str = "least_load",
    ) -> str:
        nodes = nodes if nodes is not None else self.nodes()
        candidates = [
            NodeLoad(n.name, n.capacity, len(n.devices))
            for n in nodes
            if n.alive and not n.draining and n.name not in exclude
        ]
        choice = schedulers.get(scheduler)().choose(candidates, device)
        if choice is None:
            raise NoNodeAvailable(
                "no live worker node can take another device for pinned jobs; start one with "
                "`netpulse worker node`, or send queue_strategy: fifo"
            )
        owner = self._assign(keys=[ASSIGN], args=[device, current or "", choice.name])
        return owner.decode() if isinstance(owner, bytes) else str(owner)
