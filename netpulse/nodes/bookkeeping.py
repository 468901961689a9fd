"""A node lets go of devices it no longer serves, so its device list and load stay true.

A device is assigned to a node when its first pinned job is queued. If the node never held
a session to it (the device was unreachable) or closed it (idle), and no job of the device
is queued, waiting or running, keeping it assigned would make ``GET /workers`` list a device
the node does not hold and the scheduler count load that is not there. After
``node.device_release_seconds`` of that, the device is released (one script: only while
this node still owns it and its rate limit holds no job); its next job places it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis import Redis
from rq.rate_limit import RateLimitRegistry

from netpulse.nodes.directory import NodeDirectory
from netpulse.nodes.failover import pinned_limit_key

log = logging.getLogger(__name__)


class IdleDevices:
    def __init__(
        self,
        conn: Redis,
        directory: NodeDirectory,
        node: str,
        held: Callable[[], set[str]],
        grace: float,
    ) -> None:
        self.conn = conn
        self.directory = directory
        self.node = node
        #: the devices the node's session pool holds a session to
        self.held = held
        self.grace = grace
        #: device -> when it was first seen without a session
        self._idle_since: dict[str, float] = {}

    def sweep(self, now: float | None = None) -> list[str]:
        """Release the devices idle past the grace; return them."""
        now = time.monotonic() if now is None else now
        assigned = set(self.directory.devices_of(self.node))
        with_session = self.held()
        idle = assigned - with_session
        self._idle_since = {d: self._idle_since.get(d, now) for d in idle}
        released = []
        for device, since in list(self._idle_since.items()):
            if now - since < self.grace:
                continue
            registry = RateLimitRegistry(pinned_limit_key(device), self.conn)
            keys = (registry.allowed_key, registry.rate_limited_key)
            if self.directory.release(device, self.node, keys):
                released.append(device)
                del self._idle_since[device]
                log.info("node %s: released %s (no session, no job)", self.node, device)
            else:
                self._idle_since[device] = now  # it has jobs (or moved): look again later
        return released
