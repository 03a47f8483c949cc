"""The replay guard's table: a signed request (access id + signature) is accepted once inside the time window.

A replay has to repeat the signature: it covers the access id, timestamp, nonce and body, so two honest
calls that happen to draw the same nonce (the official SDK picks one of 900,000) differ in it and both pass.
"""

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from rayfarm.store.schema import seen_requests


def _insert(conn: Connection):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(seen_requests).on_conflict_do_nothing()


def remember(conn: Connection, access_id: str, signature: str, now: float) -> bool:
    """Record the request; False if it was seen before (a replay)."""
    # rowcount of an INSERT is -1 on psycopg unless asked for (SQLAlchemy 2): every request looked replayed
    return conn.execute(_insert(conn).values(access_id=access_id, signature=signature, seen_at=now),
                        execution_options={"preserve_rowcount": True}).rowcount == 1


def remember_many(conn: Connection, rows: list[dict]) -> None:
    """Record requests already checked in memory (``access_id``, ``signature``, ``seen_at`` each)."""
    if rows:
        conn.execute(_insert(conn), rows)


def seen_since(conn: Connection, cutoff: float) -> list[tuple[str, str, float]]:
    query = select(seen_requests.c.access_id, seen_requests.c.signature, seen_requests.c.seen_at).where(
        seen_requests.c.seen_at >= cutoff)
    return [tuple(row) for row in conn.execute(query)]


def forget_older_than(conn: Connection, cutoff: float) -> int:
    return conn.execute(delete(seen_requests).where(seen_requests.c.seen_at < cutoff)).rowcount
