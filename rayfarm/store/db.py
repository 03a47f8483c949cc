"""Engine set-up, transactions and migrations.

``Database.write()`` opens a transaction that may write: on SQLite it starts with
``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout instead of failing when a
read lock cannot be upgraded; on PostgreSQL it is an ordinary transaction and rows are locked
explicitly where needed.
"""

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).with_name("migrations")


class Conflict(Exception):
    """A write collided with a row another transaction wrote first (a unique key): run it again, it sees that row."""


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir) / 'rayfarm.db'}"


class Database:
    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = self._make_engine(url)
        self._write_lock = threading.RLock() if self.is_sqlite else None

    def _make_engine(self, url: str) -> Engine:
        if not self.is_sqlite:
            # No server-side prepared statements: PostgreSQL's generic plan for "task_id = $1 AND status = $2"
            # ignores how skewed frame statuses are and scans a million-row table; custom plans use the index.
            return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True,
                                 connect_args={"prepare_threshold": None})
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60},
                               pool_size=16, max_overflow=32)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        return engine

    @contextlib.contextmanager
    def _transaction(self, sqlite_begin: str) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                with conn.begin():
                    # SQLite: our own BEGIN (the driver runs in autocommit mode; its commit() and rollback() end
                    # the transaction they find). Issued here rather than from a "begin" event listener: any
                    # connection event makes SQLAlchemy dispatch events around every statement.
                    if self.is_sqlite:
                        conn.exec_driver_sql(sqlite_begin)
                    yield conn
        except IntegrityError as exc:  # rolled back; callers outside the store see no driver's exception
            raise Conflict(str(exc.orig)[:500]) from exc

    @contextlib.contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """Each statement its own transaction (one round trip on PostgreSQL): for a single read."""
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that may write (SQLite: BEGIN IMMEDIATE, writers queue instead of failing to upgrade).

        On SQLite the writers of this process also queue on a lock of their own, in turn: waiting in
        SQLite's busy handler instead (it sleeps 1, 2, 5 ... 100 ms between retries) let a user's write
        oversleep again and again behind the nodes' batches (bench.load: p99 of writes 8.5 s → 2.2 s)."""
        with self._write_lock or contextlib.nullcontext(), self._transaction("BEGIN IMMEDIATE") as conn:
            yield conn

    def read(self):
        return self._transaction("BEGIN")

    def migrate(self) -> None:
        """Bring the schema to the newest migration (safe to run from several processes at once)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url)
        if self.is_sqlite:
            with self.write() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
            return
        engine = create_engine(self.url, poolclass=NullPool)
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(7301)"))
            conn.commit()
            try:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(7301)"))
                conn.commit()
        engine.dispose()

    def dispose(self) -> None:
        self.engine.dispose()


def database_url(data_dir: Path, url: str | None = None) -> str:
    return url or os.environ.get("RAYFARM_DATABASE_URL") or sqlite_url(data_dir)
