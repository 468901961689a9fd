"""Jobs a worker took from its queue (RQ's BLMOVE to the intermediate list) but never started,
because Redis went away in between: they are put back at the front of their queue, once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis
from rq import Queue

from netpulse.runtime.redis_server import RedisServer
from netpulse.worker.stranded import StrandedJobs


@pytest.fixture
def conn() -> Iterator[Redis]:
    with RedisServer(appendonly=False) as server:
        client = Redis.from_url(server.url)
        yield client
        client.close()


def take_without_starting(queue: Queue) -> str:
    """What a worker's dequeue does before it registers the job as started."""
    job_id = queue.connection.lmove(queue.key, queue.intermediate_queue_key)
    assert job_id is not None
    return job_id.decode()


def test_a_stranded_job_goes_back_to_the_front_of_its_queue(conn: Redis) -> None:
    queue = Queue("FifoQ", connection=conn)
    first = queue.enqueue("builtins.print", "first")
    second = queue.enqueue("builtins.print", "second")
    assert take_without_starting(queue) == first.id
    sweeper = StrandedJobs(conn, "FifoQ", after=0.2)

    assert sweeper.sweep() == []  # seen once: a worker may be about to start it
    assert queue.get_job_ids() == [second.id]
    assert StrandedJobs(conn, "FifoQ", after=0.0).sweep() == [first.id]
    assert queue.get_job_ids() == [first.id, second.id]  # first in line, as it was
    assert queue.intermediate_queue.get_job_ids() == []
    assert sweeper.sweep() == []  # the other sweeper finds nothing left to do


def test_a_started_or_ended_job_is_never_put_back(conn: Redis) -> None:
    queue = Queue("FifoQ", connection=conn)
    running = queue.enqueue("builtins.print", "running")
    take_without_starting(queue)
    running.set_status("started")  # its work-horse marked it: the function may be running
    gone = queue.enqueue("builtins.print", "gone")
    take_without_starting(queue)
    gone.delete()

    assert StrandedJobs(conn, "FifoQ", after=0.0).sweep() == []
    assert queue.get_job_ids() == []
    # The started job stays for RQ's own handling; the vanished job's entry is dropped.
    assert queue.intermediate_queue.get_job_ids() == [running.id]
