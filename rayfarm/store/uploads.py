"""Upload sessions: what a resumable upload is for (the bytes live in files, see server/files.py).

An unfinished session reserves its declared size in the user's storage quota (``quotas.reserve_upload``);
sessions older than ``LIFETIME`` (24 h) are dropped when their user opens the next one.
"""

import secrets
import time

from sqlalchemy import Connection, delete, insert, select, update

from rayfarm.store import quotas
from rayfarm.store.schema import uploads
from rayfarm.store.users import User

LIFETIME = quotas.UPLOAD_LIFETIME


def drop_expired(conn: Connection, user_id: int, now: float) -> list[str]:
    """Forget the user's unfinished sessions older than LIFETIME; their ids (delete their partial files)."""
    where = (uploads.c.user_id == user_id, uploads.c.completed_at.is_(None), uploads.c.created_at < now - LIFETIME)
    expired = list(conn.scalars(select(uploads.c.id).where(*where)))
    if expired:
        conn.execute(delete(uploads).where(uploads.c.id.in_(expired)))
    return expired


def begin(conn: Connection, user: User, local_path: str, storage_path: str, size: int, sha256: str) -> str:
    """Reuse an unfinished session for the same file and content, else open a new one (403 if it does not fit)."""
    existing = conn.scalar(select(uploads.c.id).where(
        uploads.c.user_id == user.id, uploads.c.storage_path == storage_path, uploads.c.sha256 == sha256,
        uploads.c.size == size, uploads.c.completed_at.is_(None), uploads.c.created_at >= time.time() - LIFETIME))
    if existing:
        return existing
    quotas.reserve_upload(conn, user, size)
    upload_id = secrets.token_urlsafe(24)
    conn.execute(insert(uploads).values(id=upload_id, user_id=user.id, local_path=local_path,
                                        storage_path=storage_path, size=size, sha256=sha256, created_at=time.time()))
    return upload_id


def get(conn: Connection, upload_id: str):
    return conn.execute(select(uploads).where(uploads.c.id == upload_id)).first()


def finish(conn: Connection, upload_id: str, user_id: int, new_bytes: int) -> None:
    """The session is done; ``new_bytes`` more are stored (0 when the user's storage had this content)."""
    conn.execute(update(uploads).where(uploads.c.id == upload_id).values(completed_at=time.time()))
    quotas.add_stored(conn, user_id, new_bytes)
