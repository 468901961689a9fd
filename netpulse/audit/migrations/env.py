"""Alembic's environment for the audit store: run on the connection the caller hands over
(``netpulse.audit.database.upgrade``), never from an alembic.ini."""

from __future__ import annotations

from alembic import context

from netpulse.audit.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
