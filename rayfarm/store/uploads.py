"""Upload sessions: what a resumable upload is for (the bytes live in files, see server/files.py)."""

import secrets
import time

from sqlalchemy import Connection, insert, select, update

from rayfarm.store.schema import uploads


def begin(conn: Connection, user_id: int, local_path: str, storage_path: str, size: int, sha256: str) -> str:
    """Reuse an unfinished session for the same file and content, else open a new one."""
    existing = conn.scalar(select(uploads.c.id).where(
        uploads.c.user_id == user_id, uploads.c.storage_path == storage_path, uploads.c.sha256 == sha256,
        uploads.c.size == size, uploads.c.completed_at.is_(None)))
    if existing:
        return existing
    upload_id = secrets.token_urlsafe(24)
    conn.execute(insert(uploads).values(id=upload_id, user_id=user_id, local_path=local_path,
                                        storage_path=storage_path, size=size, sha256=sha256, created_at=time.time()))
    return upload_id


def get(conn: Connection, upload_id: str):
    return conn.execute(select(uploads).where(uploads.c.id == upload_id)).first()


def finish(conn: Connection, upload_id: str) -> None:
    conn.execute(update(uploads).where(uploads.c.id == upload_id).values(completed_at=time.time()))
