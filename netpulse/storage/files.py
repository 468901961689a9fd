"""Staged files: an upload waiting for its job, or a download waiting for its client.

Files live in Redis under ``netpulse:file:<id>`` (content) and ``netpulse:file:<id>:meta``
(name, size, sha256), with a time to live, so the controller and the workers need no shared
disk. Ids are 32 hex characters: a file id can never name a path.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import asdict, dataclass

from redis import Redis

FILE_ID = re.compile(r"^[0-9a-f]{32}$")
#: Largest file NetPulse moves (Redis holds it in memory while it is staged).
MAX_FILE_BYTES = 64 * 1024 * 1024


class FileTooLarge(ValueError):
    pass


@dataclass(frozen=True)
class StagedFile:
    id: str
    name: str
    size: int
    sha256: str
    created_at: float

    @property
    def download_url(self) -> str:
        return f"/storage/fetch/{self.id}"


def _keys(file_id: str) -> tuple[str, str]:
    return f"netpulse:file:{file_id}", f"netpulse:file:{file_id}:meta"


def stage(conn: Redis, data: bytes, name: str, ttl: int) -> StagedFile:
    """Keep ``data`` for ``ttl`` seconds and return its description."""
    if len(data) > MAX_FILE_BYTES:
        raise FileTooLarge(
            f"the file has {len(data)} bytes; at most {MAX_FILE_BYTES} can be transferred"
        )
    staged = StagedFile(
        id=uuid.uuid4().hex,
        name=name.rsplit("/", 1)[-1][:255] or "file",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        created_at=time.time(),
    )
    content_key, meta_key = _keys(staged.id)
    pipe = conn.pipeline()
    pipe.set(content_key, data, ex=ttl)
    pipe.set(meta_key, json.dumps(asdict(staged)), ex=ttl)
    pipe.execute()
    return staged


def describe(conn: Redis, file_id: str) -> StagedFile | None:
    if not FILE_ID.match(file_id):
        return None
    raw = conn.get(_keys(file_id)[1])
    return StagedFile(**json.loads(raw)) if raw else None


def read(conn: Redis, file_id: str) -> tuple[StagedFile, bytes] | None:
    """The file and its content, or None when unknown or expired."""
    meta = describe(conn, file_id)
    if meta is None:
        return None
    data = conn.get(_keys(file_id)[0])
    if data is None:
        return None
    assert isinstance(data, bytes)  # NetPulse's clients never decode replies
    return meta, data
