"""Which database a farm runs on, and PostgreSQL databases made and dropped for tests and benchmarks.

Tests run on SQLite unless RAYFARM_TEST_DATABASE_URL names a PostgreSQL server; then every farm gets a
database of its own, so tests never see each other's rows. Benchmarks start PostgreSQL with scripts/pg.sh
(`--database postgres`), make a database per run and drop it on the way out.
"""

import os
import socket
import subprocess
import uuid
from pathlib import Path

from sqlalchemy import create_engine

ROOT = Path(__file__).resolve().parents[2]
PG_SCRIPT = ROOT / "scripts" / "pg.sh"


def on_postgres() -> bool:
    return bool(os.environ.get("RAYFARM_TEST_DATABASE_URL"))


def fresh_database_url() -> str | None:
    """A new, empty PostgreSQL database for one farm of the tests; None on SQLite."""
    base = os.environ.get("RAYFARM_TEST_DATABASE_URL")
    return create_database(base) if base else None


def _admin(base_url: str, statement: str) -> None:
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def create_database(base_url: str, prefix: str = "rf_") -> str:
    """CREATE DATABASE on the server of ``base_url``; the new database's URL."""
    name = prefix + uuid.uuid4().hex[:16]
    _admin(base_url, f"CREATE DATABASE {name}")
    return base_url.rsplit("/", 1)[0] + "/" + name


def drop_database(base_url: str, url: str) -> None:
    """Drop the database of ``url`` (made by :func:`create_database`), its connections included."""
    _admin(base_url, f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


def postgres_port() -> int:
    return int(os.environ.get("RAYFARM_PG_PORT", "54329"))  # scripts/pg.sh's default


def start_postgres() -> tuple[str, bool]:
    """`scripts/pg.sh start`: the server's URL, and whether this call started it (stop it again then)."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        running = sock.connect_ex(("127.0.0.1", postgres_port())) == 0
    out = subprocess.run(["bash", str(PG_SCRIPT), "start"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    return out.stdout.strip().splitlines()[-1], not running


def stop_postgres() -> None:
    subprocess.run(["bash", str(PG_SCRIPT), "stop"], cwd=ROOT, capture_output=True, timeout=60)
