"""The database's part of a backup: a consistent copy taken while the farm runs, and putting it back.

SQLite: the online backup API of the ``sqlite3`` module (a consistent snapshot while the server writes;
readers and writers wait only for a moment per step). PostgreSQL: ``pg_dump --format=custom`` (one
consistent snapshot) and ``pg_restore`` (Debian's ``postgresql-client``; its version must be at least the
server's). The password never goes on a command line: the tools get the connection in their environment.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from rayfarm.store.schema import frames, tasks, users

SQLITE_FILE, POSTGRES_FILE = "database.sqlite", "database.pgdump"


class BackupError(Exception):
    """The database cannot be backed up or restored; the message says why and what to do."""


def kind_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"The database {url} is not a file; nothing to back up.")
    return Path(database)


def _pg_env(url: str) -> dict[str, str]:
    """libpq's environment for ``url`` (host, port, user, password, database): nothing on the command line."""
    parsed = make_url(url)
    env = dict(os.environ)
    for name, value in (("PGHOST", parsed.host), ("PGPORT", parsed.port), ("PGUSER", parsed.username),
                        ("PGPASSWORD", parsed.password), ("PGDATABASE", parsed.database)):
        if value:
            env[name] = str(value)
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not installed on this machine; install PostgreSQL's client tools "
                          f"(Debian: apt-get install postgresql-client) in the server's major version or newer.")
    return found


def _run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        said = " ".join((done.stderr or done.stdout).split())[:800]
        raise BackupError(f"{Path(argv[0]).name} failed (exit code {done.returncode}): {said}")


def dump(url: str, folder: Path) -> tuple[str, dict[str, int]]:
    """Write a consistent copy of the database into ``folder``: its file name, and what it holds (counted in
    the same snapshot)."""
    if kind_of(url) == "sqlite":
        source_path = _sqlite_path(url)
        if not source_path.is_file():
            raise BackupError(f"There is no database at {source_path}; is this the farm's data dir?")
        target = folder / SQLITE_FILE
        source = sqlite3.connect(source_path, timeout=60)
        copy = sqlite3.connect(target)
        try:
            with copy:  # one step: one read transaction, a consistent snapshot (WAL: writers go on meanwhile)
                source.backup(copy)
        finally:
            copy.close()
            source.close()
        os.chmod(target, 0o600)
        return SQLITE_FILE, counts(f"sqlite:///{target}")
    target = folder / POSTGRES_FILE
    engine = create_engine(url, poolclass=NullPool, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn, conn.begin():
            # pg_dump reads the snapshot this transaction exported: the counts are of exactly what it dumps
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            held = _counts(conn)
            _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                  "--file", str(target)], _pg_env(url))
    finally:
        engine.dispose()
    os.chmod(target, 0o600)
    return POSTGRES_FILE, held


def is_empty(url: str) -> bool:
    """Whether the database holds no farm yet (no file, or no tables)."""
    if kind_of(url) == "sqlite" and not _sqlite_path(url).exists():
        return True
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return not inspect(conn).get_table_names()
    finally:
        engine.dispose()


def load(url: str, path: Path, replace: bool) -> None:
    """Put the backed-up database ``path`` in place as the database at ``url`` (``replace``: over what is there)."""
    kind = "sqlite" if path.name == SQLITE_FILE else "postgresql"
    if kind != kind_of(url):
        how = "no --database-url" if kind == "sqlite" else "a PostgreSQL --database-url"
        raise BackupError(f"This backup holds a {kind} database and the farm here uses {kind_of(url)}: restore it "
                          f"into a farm on the same kind of database ({how}).")
    if kind == "sqlite":
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            if replace:
                stale.unlink(missing_ok=True)
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        copy = sqlite3.connect(target)
        try:
            with copy:
                source.backup(copy)
        finally:
            copy.close()
            source.close()
        os.chmod(target, 0o600)
        return
    argv = [_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    if replace:
        argv += ["--clean", "--if-exists"]
    env = _pg_env(url)
    _run([*argv, "--dbname", env.get("PGDATABASE", ""), str(path)], env)


def _counts(conn) -> dict[str, int]:
    return {"users": conn.scalar(select(func.count()).select_from(users)) or 0,
            "tasks": conn.scalar(select(func.count()).select_from(tasks)) or 0,
            "chunks": conn.scalar(select(func.count()).select_from(frames)) or 0}


def counts(url: str) -> dict[str, int]:
    """Users, tasks and chunks in the database (what a backup holds, what a restore brought back)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return _counts(conn)
    finally:
        engine.dispose()
