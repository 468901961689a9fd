"""Jobs a worker took from its queue but never started, because Redis went away in between.

An RQ worker of a single queue takes a job with ``BLMOVE queue -> queue:intermediate`` and then,
in a second step, registers it as started (``prepare_execution``), which also removes it from
the intermediate list. When Redis goes away between the two (or closes the connection before
the ``BLMOVE`` reply reaches the worker), the job id stays in the intermediate list, the job
stays ``queued``, and no worker will ever take it. RQ's own maintenance (every 10 minutes)
fails such a job after a minute ("stuck in intermediate queue"): a job that never ran ends
failed, half an hour later in the worst case.

:class:`StrandedJobs` puts it back at the front of its queue instead, once it has been seen
stranded for :data:`STRANDED_AFTER` seconds by the same sweeper (each process times what it
sees with its own monotonic clock, so hosts whose clocks disagree do not matter). Safe because:

- only a job whose status is still ``queued`` is put back: its function has not started
  (the work-horse sets ``started`` before it calls the function), checked and moved in one
  Lua script, so two sweepers never both put it back;
- a job RQ has registered as started (``StartedJobRegistry``) is left alone: its worker has it;
- the only worker that could still hold it is one stuck for :data:`STRANDED_AFTER` seconds
  between its ``BLMOVE`` and the next command, which a Redis outage ends with an error well
  before that (the client's socket timeouts).
"""

from __future__ import annotations

import logging
import time

from redis import Redis
from rq import Queue

log = logging.getLogger(__name__)

#: Seconds a job id must stay in the intermediate list, unstarted, before it is put back.
STRANDED_AFTER = 15.0

#: KEYS: intermediate list, queue list, job hash. ARGV: job id.
#: 1 = put back at the front, 0 = left alone, -1 = the job is gone (entry dropped).
_PUT_BACK = """
local status = redis.call('HGET', KEYS[3], 'status')
if not status then
  redis.call('LREM', KEYS[1], 0, ARGV[1])
  return -1
end
if status ~= 'queued' then return 0 end
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
"""


class StrandedJobs:
    """Finds and requeues the stranded jobs of one queue; call :meth:`sweep` every few s."""

    def __init__(self, conn: Redis, queue_name: str, after: float = STRANDED_AFTER) -> None:
        self.conn = conn
        self.queue = Queue(queue_name, connection=conn)
        self.after = after
        self._first_seen: dict[str, float] = {}
        self._put_back = conn.register_script(_PUT_BACK)

    def sweep(self) -> list[str]:
        """Put back the jobs stranded for long enough; their ids. Redis errors raise."""
        now = time.monotonic()
        waiting = self.queue.intermediate_queue.get_job_ids()
        if not waiting:
            self._first_seen.clear()
            return []
        started = set(self.queue.started_job_registry.get_job_ids(cleanup=False))
        self._first_seen = {
            job_id: self._first_seen.get(job_id, now) for job_id in waiting if job_id not in started
        }
        put_back = []
        for job_id, seen in list(self._first_seen.items()):
            if now - seen < self.after:
                continue
            outcome = self._put_back(
                keys=[
                    self.queue.intermediate_queue_key,
                    self.queue.key,
                    self.queue.job_class.key_for(job_id),
                ],
                args=[job_id],
            )
            del self._first_seen[job_id]
            if outcome == 1:
                put_back.append(job_id)
                log.warning(
                    "job %s was taken from queue %s by a worker that lost Redis before it "
                    "started the job; it never ran and is queued again (first in line)",
                    job_id,
                    self.queue.name,
                )
        return put_back
