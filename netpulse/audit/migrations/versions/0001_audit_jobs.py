"""The audit trail's first table: one row per job.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_jobs",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_by", sa.String(64)),
        sa.Column("client", sa.String(64)),
        sa.Column("host", sa.String(255)),
        sa.Column("port", sa.Integer),
        sa.Column("device_type", sa.String(64)),
        sa.Column("driver", sa.String(32)),
        sa.Column("strategy", sa.String(16)),
        sa.Column("queue", sa.String(128)),
        sa.Column("kind", sa.String(16)),
        sa.Column("lines", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_type", sa.String(32)),
        sa.Column("error", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("duration", sa.Float),
        sa.Column("results", sa.Text),
        sa.Column("mode", sa.String(16), nullable=False),
    )
    op.create_index("ix_audit_jobs_submitted_at", "audit_jobs", ["submitted_at"])
    op.create_index("ix_audit_jobs_host", "audit_jobs", ["host"])
    op.create_index("ix_audit_jobs_submitted_by", "audit_jobs", ["submitted_by"])
    op.create_index("ix_audit_jobs_status", "audit_jobs", ["status"])


def downgrade() -> None:
    op.drop_table("audit_jobs")
