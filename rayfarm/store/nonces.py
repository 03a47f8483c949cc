"""The replay guard: a nonce may be used once per access id inside the time window."""

from sqlalchemy import Connection, delete, exc, insert

from rayfarm.store.schema import nonces as nonces_table


def remember(conn: Connection, access_id: str, nonce: str, now: float) -> bool:
    """Record the nonce; False if it was seen before (a replay)."""
    try:
        with conn.begin_nested():
            conn.execute(insert(nonces_table).values(access_id=access_id, nonce=nonce, seen_at=now))
    except exc.IntegrityError:
        return False
    return True


def forget_older_than(conn: Connection, cutoff: float) -> int:
    return conn.execute(delete(nonces_table).where(nonces_table.c.seen_at < cutoff)).rowcount

