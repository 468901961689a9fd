"""Detached tasks in Redis: the one owner of a task's stored record and of its keys.

- ``netpulse:dt:<id>`` (hash): the task (:class:`DetachedTask`, each field as text); the
  launch request is kept sealed (``request``: as it was queued), so the follower can log in
  again without any secret in clear;
- ``netpulse:dt:<id>:log`` (string): the log bytes read so far, from ``log_start`` (the head
  is dropped past ``detached.max_log_bytes``; the API says how much);
- ``netpulse:dt:all`` (sorted set): task id -> creation time (listing);
- ``netpulse:dt:due`` (sorted set): running task id -> when it must be looked at next. A
  follower *claims* a due task by moving its score to a lease deadline in the same script,
  so a follower that dies leaves the task due again when the lease runs out;
- ``netpulse:dt:host:<host>`` (set): the running tasks of a host (the per-host limit);
- ``netpulse:dt:wake`` (list): the follower blocks on it; a new task or a kill request
  wakes it at once.

A push is made exactly once per byte range with a write-ahead step: the new bytes, the new
offset and the push about to be recorded (``pending``) are written in one transaction, then
the event is recorded (idempotent: its key is the range's start), then ``pending`` is
cleared. A follower that dies between the two steps leaves ``pending`` for the next one.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from redis import Redis

from netpulse.keys import PREFIX

TASK_PREFIX = f"{PREFIX}:dt:"
ALL = f"{PREFIX}:dt:all"
DUE = f"{PREFIX}:dt:due"
WAKE = f"{PREFIX}:dt:wake"


def host_key(host: str) -> str:
    """The running tasks of one host (a set), for ``detached.max_tasks_per_host``."""
    return f"{TASK_PREFIX}host:{host}"


def task_key(task_id: str) -> str:
    return f"{TASK_PREFIX}{task_id}"


def log_key(task_id: str) -> str:
    return f"{TASK_PREFIX}{task_id}:log"


class TaskStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"  # ended by itself with exit status 0
    FAILED = "failed"  # non-zero exit, host gone too long, its directory vanished
    KILLED = "killed"  # stopped through the API


FINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.KILLED})


def _encode(value: Any) -> str:
    """A field as stored: JSON for lists and dicts, 1/0 for flags, text otherwise."""
    if isinstance(value, list | dict):
        return json.dumps(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@dataclass
class DetachedTask:
    """One detached task as stored (``netpulse:dt:<id>``)."""

    task_id: str
    host: str
    driver: str
    command: list[str]
    status: TaskStatus
    created_at: float
    #: The launch request as queued (secrets sealed), JSON.
    request: str
    job_id: str | None = None
    pid: int | None = None
    push_interval: int = 10
    #: Bytes of the remote log read so far (the next read starts here).
    offset: int = 0
    #: Where the kept log (``netpulse:dt:<id>:log``) starts: bytes before were dropped.
    log_start: int = 0
    exit_code: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    ended_at: float | None = None
    last_sync: float | None = None
    #: Since when the host could not be reached (None while it answers).
    unreachable_since: float | None = None
    kill_requested: bool = False
    submitted_by: str | None = None
    #: A push written ahead and not yet known recorded: JSON ``{start, end, data}``.
    pending: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_hash(self) -> dict[str, str]:
        return {name: _encode(v) for name, v in asdict(self).items() if v is not None}

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> DetachedTask:
        data = {k.decode(): v.decode() for k, v in raw.items()}

        def num(name: str, kind: type = float) -> Any:
            return kind(data[name]) if name in data else None

        return cls(
            task_id=data["task_id"],
            host=data["host"],
            driver=data["driver"],
            command=json.loads(data.get("command", "[]")),
            status=TaskStatus(data["status"]),
            created_at=float(data["created_at"]),
            request=data["request"],
            job_id=data.get("job_id"),
            pid=num("pid", int),
            push_interval=int(data.get("push_interval", 10)),
            offset=int(data.get("offset", 0)),
            log_start=int(data.get("log_start", 0)),
            exit_code=num("exit_code", int),
            error_type=data.get("error_type"),
            error_message=data.get("error_message"),
            ended_at=num("ended_at"),
            last_sync=num("last_sync"),
            unreachable_since=num("unreachable_since"),
            kill_requested=data.get("kill_requested") == "1",
            submitted_by=data.get("submitted_by"),
            pending=data.get("pending"),
            extra=json.loads(data.get("extra", "{}")),
        )

    @property
    def final(self) -> bool:
        return self.status in FINAL


# Claim up to ARGV[3] tasks due by ARGV[1]: each one's score becomes the lease deadline
# ARGV[2] in the same step, so no two followers take the same task.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
end
return due
"""


# Change a stored task only while it exists, so a write that comes late (the task was
# forgotten meanwhile) never re-creates a partial record. KEYS: task, log. ARGV: the offset
# the append must start at ("" for no append), the bytes to append, the number N of fields to
# set, then N name/value pairs, then the names of fields to remove. An append whose start is
# not the stored offset (another follower got there first) changes nothing. 1 if changed.
_CHANGE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] ~= '' then
  local offset = tonumber(redis.call('HGET', KEYS[1], 'offset') or '0')
  if offset ~= tonumber(ARGV[1]) then return 0 end
  redis.call('APPEND', KEYS[2], ARGV[2])
end
local n = tonumber(ARGV[3])
for i = 0, n - 1 do
  redis.call('HSET', KEYS[1], ARGV[4 + 2 * i], ARGV[5 + 2 * i])
end
for i = 4 + 2 * n, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
end
return 1
"""


def _change(
    conn: Redis,
    task_id: str,
    fields: dict[str, Any],
    append_at: int | None = None,
    data: bytes = b"",
) -> bool:
    sets = [item for k, v in fields.items() if v is not None for item in (k, _encode(v))]
    drops = [k for k, v in fields.items() if v is None]
    start = "" if append_at is None else str(append_at)
    args: list[str | bytes | int] = [start, data, len(sets) // 2, *sets, *drops]
    return bool(conn.eval(_CHANGE, 2, task_key(task_id), log_key(task_id), *args))


def create(conn: Redis, task: DetachedTask, running: bool = True) -> None:
    """Store a new task, due at once (the follower reads its first bytes). A running task
    never expires; an ended one is kept ``detached.retention_seconds`` (:func:`ended`).
    ``running`` False: a task found ended on its host, not counted against the host's
    limit (the follower's first look records its end)."""
    with conn.pipeline(transaction=True) as pipe:
        pipe.hset(task_key(task.task_id), mapping=task.to_hash())  # type: ignore[arg-type]
        pipe.zadd(ALL, {task.task_id: task.created_at})
        pipe.zadd(DUE, {task.task_id: time.time()})
        if running:
            pipe.sadd(host_key(task.host), task.task_id)
        pipe.rpush(WAKE, task.task_id)
        pipe.execute()


def running_on(conn: Redis, host: str) -> int:
    """How many tasks run on ``host`` (one SCARD)."""
    return int(conn.scard(host_key(host)))


def ended(conn: Redis, task: DetachedTask, retention: int) -> None:
    """The task reached its final state: stored, no longer due, no longer counted, and
    kept ``retention`` seconds from now (its log with it)."""
    _change(
        conn,
        task.task_id,
        {
            "status": task.status.value,
            "error_type": task.error_type,
            "error_message": task.error_message,
            "exit_code": task.exit_code,
            "ended_at": task.ended_at,
        },
    )
    with conn.pipeline(transaction=True) as pipe:
        pipe.zrem(DUE, task.task_id)
        pipe.srem(host_key(task.host), task.task_id)
        pipe.expire(task_key(task.task_id), retention)
        pipe.expire(log_key(task.task_id), retention)
        pipe.execute()


def get(conn: Redis, task_id: str) -> DetachedTask | None:
    raw: dict[bytes, bytes] = conn.hgetall(task_key(task_id))  # type: ignore[assignment]
    return DetachedTask.from_hash(raw) if raw.get(b"task_id") else None


def listing(conn: Redis, status: str | None = None, limit: int = 1000) -> list[DetachedTask]:
    """Tasks, newest first (those whose record expired are dropped from the index)."""
    ids = [i.decode() for i in conn.zrevrange(ALL, 0, limit - 1)]  # type: ignore[union-attr]
    found = []
    with conn.pipeline(transaction=False) as pipe:
        for task_id in ids:
            pipe.hgetall(task_key(task_id))
        rows = pipe.execute()
    gone = []
    for task_id, raw in zip(ids, rows, strict=True):
        if not raw.get(b"task_id"):
            gone.append(task_id)
            continue
        task = DetachedTask.from_hash(raw)
        if status is None or task.status == status:
            found.append(task)
    if gone:
        conn.zrem(ALL, *gone)
    return found


def claim(conn: Redis, now: float, lease: float, count: int) -> list[str]:
    due = conn.eval(_CLAIM, 1, DUE, now, now + lease, count)
    return [d.decode() for d in due]


def next_due(conn: Redis) -> float | None:
    first = conn.zrange(DUE, 0, 0, withscores=True)
    return float(first[0][1]) if first else None


def schedule(conn: Redis, task_id: str, at: float) -> None:
    conn.zadd(DUE, {task_id: at}, xx=True)


def update(conn: Redis, task_id: str, **fields: Any) -> bool:
    """Change some fields of a stored task (None removes a field); False when the task is
    no longer stored."""
    return _change(conn, task_id, fields)


class TaskGone(LookupError):
    """The task was forgotten, or another follower read these bytes first."""


def write_ahead(
    conn: Redis, task: DetachedTask, data: bytes, max_log_bytes: int, **fields: Any
) -> str:
    """Append ``data`` to the kept log, move the offset past it and note the push about to
    be recorded, in one step that happens only while the stored offset is still
    ``task.offset``; returns the pending push (JSON), or raises :class:`TaskGone`."""
    start = task.offset
    pending = json.dumps({"start": start, "end": start + len(data), "data": data.hex()})
    changed = _change(
        conn,
        task.task_id,
        {"offset": start + len(data), "pending": pending, **fields},
        append_at=start,
        data=data,
    )
    if not changed:
        raise TaskGone(task.task_id)
    _cap_log(conn, task, max_log_bytes)
    return pending


# Keep at most ARGV[1] bytes of the log: past it, its newest ARGV[2] bytes, with log_start
# moved by what was dropped; in one step, only while the task exists (a trim racing an append
# or a forget can neither lose new bytes nor re-create a forgotten log). KEYS: task, log.
_CAP_LOG = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local length = redis.call('STRLEN', KEYS[2])
if length <= tonumber(ARGV[1]) then return 0 end
local keep = tonumber(ARGV[2])
redis.call('SET', KEYS[2], redis.call('GETRANGE', KEYS[2], length - keep, -1))
redis.call('HINCRBY', KEYS[1], 'log_start', length - keep)
return 1
"""


def _cap_log(conn: Redis, task: DetachedTask, max_log_bytes: int) -> None:
    """Keep at most ``max_log_bytes`` of the log (its newest half when it grew past)."""
    conn.eval(
        _CAP_LOG,
        2,
        task_key(task.task_id),
        log_key(task.task_id),
        max_log_bytes,
        max_log_bytes // 2,
    )


# The kept log from ARGV[1] as one read, so a trim by the follower between reading
# log_start and the bytes can never shift them. Returns {start, bytes}.
_READ_LOG = """
local kept_from = tonumber(redis.call('HGET', KEYS[1], 'log_start') or '0')
local start = math.max(tonumber(ARGV[1]), kept_from)
return {start, redis.call('GETRANGE', KEYS[2], start - kept_from, -1)}
"""


def read_log(conn: Redis, task: DetachedTask, offset: int) -> tuple[bytes, int, int]:
    """The kept log from ``offset``: (bytes, the offset they start at, bytes dropped
    before them because the head was no longer kept)."""
    start, data = conn.eval(_READ_LOG, 2, task_key(task.task_id), log_key(task.task_id), offset)
    return bytes(data), int(start), int(start) - offset


def forget(conn: Redis, task: DetachedTask) -> None:
    with conn.pipeline(transaction=True) as pipe:
        pipe.delete(task_key(task.task_id), log_key(task.task_id))
        pipe.zrem(ALL, task.task_id)
        pipe.zrem(DUE, task.task_id)
        pipe.srem(host_key(task.host), task.task_id)
        pipe.execute()


def wake(conn: Redis, task_id: str) -> None:
    with conn.pipeline(transaction=True) as pipe:
        pipe.zadd(DUE, {task_id: 0}, xx=True)
        pipe.rpush(WAKE, task_id)
        pipe.execute()
