"""The replay guard's table: a nonce may be used once per access id inside the time window."""

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from rayfarm.store.schema import nonces as nonces_table


def _insert(conn: Connection):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(nonces_table).on_conflict_do_nothing()


def remember(conn: Connection, access_id: str, nonce: str, now: float) -> bool:
    """Record the nonce; False if it was seen before (a replay)."""
    # rowcount of an INSERT is -1 on psycopg unless asked for (SQLAlchemy 2): every nonce looked replayed
    return conn.execute(_insert(conn).values(access_id=access_id, nonce=nonce, seen_at=now),
                        execution_options={"preserve_rowcount": True}).rowcount == 1


def remember_many(conn: Connection, rows: list[dict]) -> None:
    """Record nonces already checked in memory (``access_id``, ``nonce``, ``seen_at`` each)."""
    if rows:
        conn.execute(_insert(conn), rows)


def seen_since(conn: Connection, cutoff: float) -> list[tuple[str, str, float]]:
    query = select(nonces_table.c.access_id, nonces_table.c.nonce, nonces_table.c.seen_at).where(
        nonces_table.c.seen_at >= cutoff)
    return [tuple(row) for row in conn.execute(query)]


def forget_older_than(conn: Connection, cutoff: float) -> int:
    return conn.execute(delete(nonces_table).where(nonces_table.c.seen_at < cutoff)).rowcount
