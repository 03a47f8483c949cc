"""Dashboard sessions: one row per sign-in; the signed cookie names the row, signing out deletes it."""

import secrets

from sqlalchemy import Connection, bindparam, delete, exists, insert, select

from rayfarm.store.schema import web_sessions

LIVE = select(exists().where(web_sessions.c.id == bindparam("session_id"),
                             web_sessions.c.user_id == bindparam("user_id"),
                             web_sessions.c.expires_at > bindparam("now")))


def start(conn: Connection, user_id: int, now: float, lifetime: float) -> str:
    """A new session of the user; its id (random, unguessable)."""
    session_id = secrets.token_urlsafe(24)
    conn.execute(insert(web_sessions).values(id=session_id, user_id=user_id, created_at=now, expires_at=now + lifetime))
    return session_id


def live(conn: Connection, session_id: str, user_id: int, now: float) -> bool:
    return bool(conn.scalar(LIVE, {"session_id": session_id, "user_id": user_id, "now": now}))


def end(conn: Connection, session_id: str) -> None:
    conn.execute(delete(web_sessions).where(web_sessions.c.id == session_id))


def end_all(conn: Connection, user_id: int) -> int:
    """Sign the user out everywhere; how many sessions ended."""
    return conn.execute(delete(web_sessions).where(web_sessions.c.user_id == user_id)).rowcount


def forget_expired(conn: Connection, now: float) -> int:
    return conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now)).rowcount
