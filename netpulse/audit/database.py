"""The audit store's connection and schema: SQLite by default, PostgreSQL by URL.

``audit.url`` unset means ``sqlite:///<data_dir>/audit.db`` (nothing to install; WAL mode,
so the controller reads while the archiver writes). ``postgresql://...`` is taken with the
psycopg 3 driver. The schema is Alembic's (``migrations``): :meth:`AuditDatabase.upgrade`
brings any store to the newest revision, keeping its rows, and is safe to run from several
processes at once (a PostgreSQL advisory lock; SQLite's write lock, and a second look).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from netpulse.config import Settings
from netpulse.errors import Unavailable

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Any number; the same in every process, so two upgrades wait for each other.
_ADVISORY_LOCK = 7_350_216_501


class AuditStoreUnavailable(Unavailable):
    """The audit store cannot be reached or is not ready (503)."""


def store_url(settings: Settings) -> str:
    """The SQLAlchemy URL of the store (psycopg 3 for a plain ``postgresql://``)."""
    url = settings.audit.url
    if url is None:
        return f"sqlite:///{Path(settings.data_dir).resolve() / 'audit.db'}"
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def shown(url: str) -> str:
    """The URL for logs: without its password."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class AuditDatabase:
    """One process's engine for the store, made on first use."""

    def __init__(self, settings: Settings) -> None:
        self.url = store_url(settings)
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._ready = False

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                if self.is_sqlite:
                    Path(make_url(self.url).database or "audit.db").parent.mkdir(
                        parents=True, exist_ok=True
                    )
                    self._engine = create_engine(self.url, connect_args={"timeout": 30})
                    event.listen(self._engine, "connect", _sqlite_pragmas)
                else:
                    self._engine = create_engine(self.url, pool_pre_ping=True, pool_size=5)
            return self._engine

    def upgrade(self) -> None:
        """Bring the store to the newest schema revision (creating it the first time)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                if not self.is_sqlite:
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK}
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except OperationalError:
            if not self.is_sqlite:
                raise
            # Another process created the schema between our look and our write: look again.
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        self._ready = True

    def ensure_ready(self) -> None:
        """Upgrade once per process; a store that cannot be reached is a 503 for readers."""
        if self._ready:
            return
        try:
            self.upgrade()
        except SQLAlchemyError as exc:
            log.warning("the audit store %s is not reachable: %s", shown(self.url), exc)
            raise AuditStoreUnavailable(
                f"the audit store is not reachable ({type(exc).__name__}); try again later"
            ) from None

    def has_schema(self) -> bool:
        return inspect(self.engine).has_table("audit_jobs")

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
