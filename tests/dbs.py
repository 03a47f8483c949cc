"""Which database the tests run on: SQLite by default; PostgreSQL when RAYFARM_TEST_DATABASE_URL is set.

On PostgreSQL every farm gets a database of its own, so tests never see each other's rows.
"""

import os
import uuid

from sqlalchemy import create_engine


def fresh_database_url() -> str | None:
    base = os.environ.get("RAYFARM_TEST_DATABASE_URL")
    if not base:
        return None
    name = "rf_" + uuid.uuid4().hex[:16]
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return base.rsplit("/", 1)[0] + "/" + name


def on_postgres() -> bool:
    return bool(os.environ.get("RAYFARM_TEST_DATABASE_URL"))
