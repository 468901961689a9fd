"""The audit store's tables (SQLAlchemy Core): the one place their columns are named.

One row per job. Submission and end fill different columns, so the archiver can write them
in any order (an end may be archived before its submission when both are in one batch or a
record was retried). Lists (``lines``, ``results``) are JSON text: both SQLite and
PostgreSQL store and search them as text, and the trail is read far less than written.
Changing a column means a new Alembic revision in ``migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

audit_jobs = Table(
    "audit_jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("submitted_by", String(64)),
    Column("client", String(64)),
    Column("host", String(255)),
    Column("port", Integer),
    Column("device_type", String(64)),
    Column("driver", String(32)),
    Column("strategy", String(16)),
    Column("queue", String(128)),
    Column("kind", String(16)),
    Column("lines", Text),
    Column("status", String(16), nullable=False),
    Column("error_type", String(32)),
    Column("error", Text),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("duration", Float),
    Column("results", Text),
    Column("mode", String(16), nullable=False),
    Index("ix_audit_jobs_submitted_at", "submitted_at"),
    Index("ix_audit_jobs_host", "host"),
    Index("ix_audit_jobs_submitted_by", "submitted_by"),
    Index("ix_audit_jobs_status", "status"),
)

#: The columns a submission record fills.
SUBMISSION_COLUMNS = (
    "submitted_at",
    "submitted_by",
    "client",
    "host",
    "port",
    "device_type",
    "driver",
    "strategy",
    "queue",
    "kind",
    "lines",
    "mode",
)
#: The columns a job's end fills.
END_COLUMNS = ("status", "error_type", "error", "started_at", "ended_at", "duration", "results")
