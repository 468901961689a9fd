"""``netpulse worker audit``: move the audit stream into the database, batch by batch.

A consumer group (``stream.GROUP``) gives at-least-once with acknowledgement: a batch is
read, written in one transaction (upserts, so a batch written twice changes nothing), and only
then acknowledged and deleted from the stream. If the database is down, the batch stays
pending and is read again (``XREADGROUP ... 0``) until it is written; if this process dies,
its pending records are read again by the archiver that starts under the same name (the
host's), or claimed by another after ``CLAIM_IDLE_SECONDS``. The stream is capped at
``audit.stream_max_len``; past 80 % of it the archiver says so in the log (and
``/metrics`` shows the length), because beyond it the oldest records are dropped.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy import Connection, delete, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from netpulse.audit import rows, stream
from netpulse.audit.database import AuditDatabase, shown
from netpulse.audit.schema import END_COLUMNS, SUBMISSION_COLUMNS, audit_jobs
from netpulse.config import Settings
from netpulse.runtime.redis_conn import connect

log = logging.getLogger(__name__)

#: Pending records of another archiver (a machine that died) are taken over after this.
CLAIM_IDLE_SECONDS = 60
#: How often old rows are deleted (``audit.retention_days``).
PRUNE_EVERY_SECONDS = 3600
#: Share of ``audit.stream_max_len`` at which the log warns.
NEAR_CAP = 0.8
#: How long new records are gathered into one batch after the first (see ``step``).
GATHER_SECONDS = 0.2
#: How often other archivers' stale records are looked for, and the stream's length.
CLAIM_EVERY_SECONDS = 5.0
LOOK_EVERY_SECONDS = 5.0


class Archiver:
    def __init__(
        self, conn: Redis, db: AuditDatabase, settings: Settings, name: str | None = None
    ) -> None:
        self.conn = conn
        self.db = db
        self.settings = settings
        self.name = name or socket.gethostname()
        self._last_prune = 0.0
        self._last_cap_warning = 0.0
        #: seconds from a record's XADD to its commit, of the last batch (for benchmarks)
        self.last_lag = 0.0
        self.archived = 0
        self._last_claim = 0.0
        self._last_look = 0.0
        #: seconds new records are gathered into one batch (0: write what one read gives)
        self.gather = GATHER_SECONDS

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        log.info("audit archiver %s started; store %s", self.name, shown(self.db.url))
        self._wait_for_store(stop)
        self._ensure_group(stop)
        while not stop.is_set():
            try:
                self.step(block_ms=1000)
            except RedisError as exc:
                log.warning("audit archiver: Redis unavailable (%s); retrying", exc)
                stop.wait(1)
            except SQLAlchemyError as exc:
                log.warning(
                    "audit archiver: the store %s refused a batch (%s: %s); it stays in the "
                    "stream and is written when the store is back",
                    shown(self.db.url),
                    type(exc).__name__,
                    exc,
                )
                stop.wait(2)
            except Exception:  # a bug must not end the trail: say it, and go on
                log.exception("audit archiver: a batch failed; it is read again")
                stop.wait(2)
        log.info("audit archiver %s stopped", self.name)

    def step(self, block_ms: int = 0) -> int:
        """Archive one batch (this consumer's unacknowledged records first); how many.

        New records are gathered for up to ``GATHER_SECONDS`` after the first arrives: at a
        few hundred jobs per second a batch of one or two records costs the archiver ten
        times the CPU per record of a batch of a hundred (bench/RESULTS.md, audit), CPU the
        device workers on the same machine need; the lag stays well under a second.
        """
        now = time.monotonic()
        entries = self._pending()
        if not entries and now - self._last_claim >= CLAIM_EVERY_SECONDS:
            self._last_claim = now
            entries = self._claimed()
        if not entries:
            entries = self._new(block_ms)
            if entries and self.gather and len(entries) < self.settings.audit.batch_size:
                time.sleep(self.gather)
                entries += self._read(">", None, self.settings.audit.batch_size - len(entries))
        written = self._write(entries) if entries else 0
        self._maintain()
        return written

    def _wait_for_store(self, stop: threading.Event) -> None:
        said = False
        while not stop.is_set():
            try:
                self.db.upgrade()
                return
            except SQLAlchemyError as exc:
                if not said:
                    log.warning(
                        "audit archiver: the store %s is not reachable (%s); records wait in "
                        "the stream until it is",
                        shown(self.db.url),
                        exc,
                    )
                    said = True
                stop.wait(2)

    def _ensure_group(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.conn.xgroup_create(stream.STREAM, stream.GROUP, id="0", mkstream=True)
                return
            except ResponseError as exc:
                if "BUSYGROUP" in str(exc):
                    return
                raise
            except RedisError as exc:
                log.warning("audit archiver: Redis unavailable (%s); retrying", exc)
                stop.wait(1)

    # -- reading ------------------------------------------------------------------------------

    def _read(
        self, start: str, block_ms: int | None, count: int | None = None
    ) -> list[tuple[Any, dict[Any, Any]]]:
        reply: Any = self.conn.xreadgroup(
            stream.GROUP,
            self.name,
            {stream.STREAM: start},
            count=count or self.settings.audit.batch_size,
            block=block_ms,
        )
        if not reply:
            return []
        entries = reply[0][1]
        # A pending entry deleted meanwhile comes back as (id, None): acknowledge it away.
        gone = [entry_id for entry_id, fields in entries if not fields]
        if gone:
            self.conn.xack(stream.STREAM, stream.GROUP, *gone)
        return [(entry_id, fields) for entry_id, fields in entries if fields]

    def _pending(self) -> list[tuple[Any, dict[Any, Any]]]:
        return self._read("0", None)

    def _new(self, block_ms: int) -> list[tuple[Any, dict[Any, Any]]]:
        # XREADGROUP's BLOCK 0 would wait forever: no block means none.
        return self._read(">", block_ms or None)

    def _claimed(self) -> list[tuple[Any, dict[Any, Any]]]:
        """Records another consumer read and never acknowledged (it died)."""
        reply: Any = self.conn.xautoclaim(
            stream.STREAM,
            stream.GROUP,
            self.name,
            min_idle_time=CLAIM_IDLE_SECONDS * 1000,
            start_id="0-0",
            count=self.settings.audit.batch_size,
        )
        return [(entry_id, fields) for entry_id, fields in reply[1] if fields]

    # -- writing ------------------------------------------------------------------------------

    def _write(self, entries: list[tuple[Any, dict[Any, Any]]]) -> int:
        audit = self.settings.audit
        batch = rows.collect(entries, audit.mode, audit.max_output_bytes)
        if batch.bare_ends:
            batch.ends.update(
                rows.ends_from_rq(self.conn, batch.bare_ends, audit.mode, audit.max_output_bytes)
            )
        with self.db.engine.begin() as connection:
            self._upsert(connection, batch.submissions, SUBMISSION_COLUMNS)
            self._upsert(connection, batch.ends, END_COLUMNS)
        with self.conn.pipeline(transaction=False) as pipe:
            pipe.xack(stream.STREAM, stream.GROUP, *batch.entry_ids)
            pipe.xdel(stream.STREAM, *batch.entry_ids)
            pipe.execute()
        oldest = min(float(_text(i).split("-")[0]) / 1000 for i in batch.entry_ids)
        self.last_lag = time.time() - oldest
        self.archived += len(batch.entry_ids)
        return len(batch.entry_ids)

    def _upsert(
        self, connection: Connection, found: dict[str, dict[str, Any]], columns: tuple[str, ...]
    ) -> None:
        if not found:
            return
        values = [
            {
                "job_id": job_id,
                "status": "queued",
                "mode": str(self.settings.audit.mode),
                **{c: row.get(c) for c in columns},
            }
            for job_id, row in found.items()
        ]
        for value in values:  # an end's own status and mode win over the defaults
            if value["status"] is None:
                value["status"] = "queued"
            if value["mode"] is None:
                value["mode"] = str(self.settings.audit.mode)
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        statement = dialect.insert(audit_jobs)
        statement = statement.on_conflict_do_update(
            index_elements=["job_id"], set_={c: statement.excluded[c] for c in columns}
        )
        connection.execute(statement, values)

    # -- upkeep -------------------------------------------------------------------------------

    def _maintain(self) -> None:
        now = time.time()
        if now - self._last_prune >= PRUNE_EVERY_SECONDS:
            self._last_prune = now
            self.prune(now)
        if now - self._last_look < LOOK_EVERY_SECONDS:
            return
        self._last_look = now
        length = int(self.conn.xlen(stream.STREAM))
        cap = self.settings.audit.stream_max_len
        if length >= NEAR_CAP * cap and now - self._last_cap_warning >= 60:
            self._last_cap_warning = now
            log.warning(
                "the audit stream holds %d records of its cap of %d (audit.stream_max_len): "
                "past the cap the oldest are dropped; is the store %s slow or down?",
                length,
                cap,
                shown(self.db.url),
            )

    def prune(self, now: float | None = None) -> int:
        """Delete rows older than ``audit.retention_days``; how many."""
        cutoff = datetime.fromtimestamp(now or time.time(), UTC) - timedelta(
            days=self.settings.audit.retention_days
        )
        with self.db.engine.begin() as connection:
            result = connection.execute(
                delete(audit_jobs).where(
                    or_(
                        audit_jobs.c.submitted_at < cutoff,
                        (audit_jobs.c.submitted_at.is_(None)) & (audit_jobs.c.ended_at < cutoff),
                    )
                )
            )
        return int(result.rowcount or 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def serve(settings: Settings, stop: threading.Event, name: str | None = None) -> None:
    """Run an archiver until ``stop`` is set."""
    conn = connect(settings.redis_url)
    db = AuditDatabase(settings)
    try:
        Archiver(conn, db, settings, name=name).run(stop)
    finally:
        db.dispose()
        conn.close()
