"""Move a node's work elsewhere: when it is drained, stops, or is lost.

For each device the node held: choose a new node (scheduler plugin), move the device's queued
job to the new node's queue and point its waiting (rate-limited) jobs there, in their order.
Jobs that were running on a *lost* node end failed with an error naming the node (RQ's own
abandoned-job cleanup does the bookkeeping and runs the failure callback, so the webhook
``job.failed`` event is recorded like any other).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.rate_limit import RateLimitRegistry

from netpulse.config import Settings
from netpulse.models.job import JobErrorType
from netpulse.nodes.directory import NodeDirectory, NoNodeAvailable, devices_key, node_queue
from netpulse.runtime.redis_conn import redis_text
from netpulse.worker.job_end import publish_job_end
from netpulse.worker.registries import ThreadedStartedJobRegistry

log = logging.getLogger(__name__)

LOCK_SECONDS = 60


def pinned_limit_key(device: str) -> str:
    """RQ RateLimit key of a device's pinned jobs (one at a time, in order)."""
    return f"netpulse:pinned:{device}"


def fifo_limit_key(device: str) -> str:
    return f"netpulse:fifo:{device}"


def relocate_device(conn: Redis, device: str, old: str, new: str) -> int:
    """Point the device's queued and waiting pinned jobs at ``new``'s queue; return how many."""
    old_queue = Queue(node_queue(old), connection=conn)
    new_queue = Queue(node_queue(new), connection=conn)
    moved = 0
    for job in Job.fetch_many(old_queue.get_job_ids(), connection=conn):
        if job is None or job.meta.get("device") != device:
            continue
        with conn.pipeline() as pipe:
            pipe.lrem(old_queue.key, 0, job.id)
            pipe.hset(job.key, "origin", new_queue.name)
            new_queue.push_job_id(job.id, pipeline=pipe)
            pipe.execute()
        moved += 1
    waiting = RateLimitRegistry(pinned_limit_key(device), conn).get_rate_limited_job_ids()
    for job_id in waiting:
        conn.hset(Job.key_for(job_id), "origin", new_queue.name)
    conn.sadd("rq:queues", new_queue.key)
    return moved + len(waiting)


def move_devices(
    conn: Redis, directory: NodeDirectory, node: str, settings: Settings
) -> dict[str, str]:
    """Give every device of ``node`` to another live node; return device -> new node."""
    moved: dict[str, str] = {}
    for raw in conn.smembers(devices_key(node)):
        device = redis_text(raw)
        try:
            new = directory.move(device, node, exclude={node}, scheduler=settings.node.scheduler)
        except NoNodeAvailable:
            log.error("no live node can take device %s from node %s; its jobs wait", device, node)
            continue
        relocate_device(conn, device, node, new)
        moved[device] = new
    if moved:
        log.warning("moved %d device(s) of node %s: %s", len(moved), node, moved)
    return moved


def failover_key(node: str) -> str:
    return f"netpulse:failover:{node}"


@contextmanager
def failover_lock(conn: Redis, node: str) -> Iterator[bool]:
    """Hold the lock under which one process fails ``node`` over (yields whether it got it);
    released at the end, so a node restarting under that name need not wait for its expiry."""
    acquired = bool(conn.set(failover_key(node), "1", nx=True, ex=LOCK_SECONDS))
    try:
        yield acquired
    finally:
        if acquired:
            conn.delete(failover_key(node))


def wait_for_failover(conn: Redis, node: str, stop: threading.Event) -> None:
    """Wait until another process has finished failing ``node`` over (its lock is gone)."""
    deadline = time.monotonic() + LOCK_SECONDS
    while conn.exists(failover_key(node)) and time.monotonic() < deadline:
        if stop.wait(0.2):
            return


def fail_running_jobs(conn: Redis, node: str, message: str | None = None) -> list[str]:
    """End the jobs that were running on a lost node as failed, naming the node.

    Every entry of the node's started registry belongs to a process that is gone, so all of
    them are abandoned: RQ's cleanup runs the failure callback (one ``job.failed`` each) and
    releases each job's rate-limit slot, which promotes the device's next waiting job."""
    registry = ThreadedStartedJobRegistry(node_queue(node), connection=conn)
    ids = registry.get_job_ids(cleanup=False)
    for job in Job.fetch_many(ids, connection=conn):
        if job is None or job.get_status(refresh=False) != JobStatus.STARTED:
            continue
        job.meta["error"] = {
            "type": JobErrorType.NODE_LOST.value,
            "message": message or f"worker node {node} was lost while running the job",
        }
        job.save_meta()
    registry.cleanup(timestamp=time.time() + 10**9)  # every entry of a lost node is abandoned
    publish_job_end(conn, ids)
    return ids


def release_device_slots(conn: Redis, directory: NodeDirectory, node: str) -> int:
    """Free the pinned rate-limit slots of ``node``'s devices that no live job holds and
    promote their waiting jobs (RQ's own rate-limit cleanup); return how many were promoted."""
    promoted = 0
    for raw in conn.smembers(devices_key(node)):
        registry = RateLimitRegistry(pinned_limit_key(redis_text(raw)), conn)
        before = registry.get_rate_limited_job_count()
        registry.cleanup()
        promoted += max(before - registry.get_rate_limited_job_count(), 0)
    return promoted


#: How many lost nodes were failed over since this Redis was started (``/system/stats``'s
#: ``self_healing.total_triggers``).
FAILOVERS = "netpulse:failovers"


def failover_count(conn: Redis) -> int:
    """Lost nodes failed over so far (a restarted node recovering its own previous life is
    not counted: nothing failed over to another node)."""
    value = conn.get(FAILOVERS)
    return int(value) if value is not None else 0


def recover_lost_node(conn: Redis, directory: NodeDirectory, node: str, settings: Settings) -> None:
    """Failover for a node that stopped beating (called by every live node; one wins the lock)."""
    with failover_lock(conn, node) as acquired:
        if not acquired or directory.beating_instance(node):
            return  # another process does it, or the node beats again (it restarted)
        log.warning("node %s stopped beating; failing over", node)
        move_devices(conn, directory, node, settings)
        failed = fail_running_jobs(conn, node)
        leftover = Queue(node_queue(node), connection=conn).count
        if leftover:
            log.error(
                "node %s: %d queued job(s) of unknown devices stay in its queue", node, leftover
            )
        directory.forget(node)
        conn.incr(FAILOVERS)
        log.warning("node %s removed; %d running job(s) failed", node, len(failed))


def hand_over(conn: Redis, directory: NodeDirectory, node: str, settings: Settings) -> None:
    """A node that stops cleanly gives its devices away, then leaves the directory."""
    move_devices(conn, directory, node, settings)
    directory.forget(node)


def drain(conn: Redis, directory: NodeDirectory, node: str, settings: Settings) -> dict[str, str]:
    """Stop giving ``node`` devices and move the ones it has; it exits once idle."""
    directory.set_draining(node)
    return move_devices(conn, directory, node, settings)


def place_device(conn: Redis, device: str, settings: Settings) -> str:
    """The live node for a pinned device; when it changes owner, its waiting jobs follow."""
    node, previous = NodeDirectory(conn).place(device, scheduler=settings.node.scheduler)
    if previous and previous != node:
        relocate_device(conn, device, previous, node)
    return node
