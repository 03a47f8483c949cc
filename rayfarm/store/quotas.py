"""Per-user quotas: counting a user's active and unsubmitted tasks and stored bytes, and refusing what exceeds.

The limits are columns of ``users`` (NULL: unlimited), set by an administrator (``rayfarm user quota``).
Every check reads them in the caller's transaction, so a changed limit applies to the next call.
Checks that could let two concurrent calls both take the last place lock the user's row first (on
SQLite the write transaction already runs alone); the user's row is always the last row a transaction
locks, after its tasks. The refusal sentences are in ``rayfarm.domain.quotas``.

Stored bytes are counted as they arrive: an upload's content the first time the user's storage holds it
(``uploads.finish``), a node's output file (``add_stored``; never refused: a render's output is always
kept, and it counts, so the user's next upload or submit is refused once they are over the limit). An
upload reserves its declared size from ``uploadInit`` until it finishes.
"""

import time
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, case, func, select, update

from rayfarm.domain import quotas as words
from rayfarm.domain.frames import MAX_FRAMES
from rayfarm.domain.states import ACTIVE, TaskStatus
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.store.schema import tasks, uploads, users
from rayfarm.store.users import User

_ACTIVE = [int(s) for s in ACTIVE]
UPLOAD_LIFETIME = 24 * 3600  # an unfinished upload session expires (rayfarm/store/uploads.py)


@dataclass(frozen=True)
class Usage:
    """A user's limits (None: unlimited) and what they use now."""

    max_active_tasks: int | None
    max_frames_per_task: int | None
    max_storage_bytes: int | None
    active_tasks: int
    unsubmitted_tasks: int
    storage_bytes: int
    reserved_bytes: int  # declared sizes of unfinished uploads

    def as_json(self) -> dict:
        """The fields added to queryUserSetting (and `rayfarm user quota --json`)."""
        return {"maxActiveTasks": self.max_active_tasks, "activeTasks": self.active_tasks,
                "maxUnsubmittedTasks": self.max_active_tasks, "unsubmittedTasks": self.unsubmitted_tasks,
                "maxFramesPerTask": self.max_frames_per_task or MAX_FRAMES,
                "maxStorageBytes": self.max_storage_bytes, "storageBytes": self.storage_bytes,
                "storageReservedBytes": self.reserved_bytes}


def _row(conn: Connection, user_id: int, lock: bool = False):
    query = select(users.c.max_active_tasks, users.c.max_frames_per_task, users.c.max_storage_bytes,
                   users.c.storage_bytes).where(users.c.id == user_id)
    return conn.execute(query.with_for_update() if lock else query).one()


def _count(conn: Connection, user_id: int, statuses: list[int]) -> int:
    return conn.scalar(select(func.count()).select_from(tasks).where(
        tasks.c.user_id == user_id, tasks.c.status.in_(statuses), tasks.c.is_deleted.is_(False)))


def _open_uploads():
    return uploads.c.completed_at.is_(None), uploads.c.created_at >= time.time() - UPLOAD_LIFETIME


def _reserved(conn: Connection, user_id: int) -> int:
    return int(conn.scalar(select(func.coalesce(func.sum(uploads.c.size), 0)).where(
        uploads.c.user_id == user_id, *_open_uploads())))


def usage(conn: Connection, user_id: int) -> Usage:
    row = _row(conn, user_id)
    return Usage(row.max_active_tasks, row.max_frames_per_task, row.max_storage_bytes,
                 _count(conn, user_id, _ACTIVE), _count(conn, user_id, [int(TaskStatus.CREATED)]),
                 int(row.storage_bytes), _reserved(conn, user_id))


def usage_by_user(conn: Connection) -> dict[int, Usage]:
    """Every user's usage in four queries (for `rayfarm user list`)."""
    def counted(statuses: list[int]) -> dict[int, int]:
        return dict(conn.execute(select(tasks.c.user_id, func.count()).where(
            tasks.c.status.in_(statuses), tasks.c.is_deleted.is_(False)).group_by(tasks.c.user_id)).all())

    active, unsubmitted = counted(_ACTIVE), counted([int(TaskStatus.CREATED)])
    reserved = dict(conn.execute(select(uploads.c.user_id, func.sum(uploads.c.size)).where(
        *_open_uploads()).group_by(uploads.c.user_id)).all())
    rows = conn.execute(select(users.c.id, users.c.max_active_tasks, users.c.max_frames_per_task,
                               users.c.max_storage_bytes, users.c.storage_bytes))
    return {r.id: Usage(r.max_active_tasks, r.max_frames_per_task, r.max_storage_bytes, active.get(r.id, 0),
                        unsubmitted.get(r.id, 0), int(r.storage_bytes), int(reserved.get(r.id) or 0)) for r in rows}


# ---------------------------------------------------------------- checks (raise ApiError, change nothing)

def check_create(conn: Connection, user: User, count: int) -> None:
    """createTask: created but unsubmitted ids are capped by the active-tasks limit too."""
    limit = _row(conn, user.id, lock=True).max_active_tasks
    if limit is not None:
        unsubmitted = _count(conn, user.id, [int(TaskStatus.CREATED)])
        if unsubmitted + count > limit:
            raise ApiError(Code.FORBIDDEN, words.unsubmitted_refusal(user.name, limit, unsubmitted, count))


def check_activate(conn: Connection, user: User, adding: int, *, counted: bool = False, lock: bool = True) -> None:
    """``adding`` tasks are about to become active (submit, start, re-render of finished tasks).

    ``counted``: this transaction made them active already (the last step of a submit)."""
    limit = _row(conn, user.id, lock=lock).max_active_tasks
    if limit is not None:
        active = _count(conn, user.id, _ACTIVE) - (adding if counted else 0)
        if active + adding > limit:
            raise ApiError(Code.FORBIDDEN, words.active_refusal(user.name, limit, active, adding))


def check_submit(conn: Connection, user: User, frames: int) -> None:
    """Before a submit does any work: frames per task, full storage, and (unlocked) the active tasks.

    The submit checks the active tasks again, locked, as its last step (``check_activate(..., counted=True)``),
    so that the expensive frame expansion never runs while the user's row is locked."""
    row = _row(conn, user.id)
    if row.max_frames_per_task is not None and frames > row.max_frames_per_task:
        raise ApiError(Code.TOO_MANY_FRAMES, words.frames_refusal(user.name, row.max_frames_per_task, frames))
    if row.max_storage_bytes is not None and row.storage_bytes >= row.max_storage_bytes:
        raise ApiError(Code.FORBIDDEN, words.storage_full_refusal(user.name, row.max_storage_bytes, row.storage_bytes))
    check_activate(conn, user, 1, lock=False)


def reserve_upload(conn: Connection, user: User, size: int) -> None:
    """uploadInit opening a session: the declared size must fit beside what is stored and reserved."""
    row = _row(conn, user.id, lock=True)
    if row.max_storage_bytes is None:
        return
    reserved = _reserved(conn, user.id)
    if row.storage_bytes + reserved + size > row.max_storage_bytes:
        raise ApiError(Code.FORBIDDEN, words.upload_refusal(user.name, row.max_storage_bytes, row.storage_bytes,
                                                            reserved, size))


# ---------------------------------------------------------------- changes

_TOTAL = users.c.storage_bytes + bindparam("delta")
# built once: a node's every output file counts, and building the statement cost more than running it
_ADD_STORED = (update(users).where(users.c.id == bindparam("user")).values(storage_bytes=case((_TOTAL < 0, 0), else_=_TOTAL)))


def add_stored(conn: Connection, user_id: int, delta: int) -> None:
    """Bytes now stored for the user (negative when a file was replaced by a smaller one). Never refuses."""
    if delta:
        conn.execute(_ADD_STORED, {"user": user_id, "delta": delta})


def _named(conn: Connection, name: str) -> int:
    user_id = conn.scalar(select(users.c.id).where(users.c.name == name))
    if user_id is None:
        raise ApiError(Code.NOT_FOUND, f"There is no user named {name!r}; list users with `rayfarm user list`.")
    return user_id


HIGHEST = {"max_active_tasks": words.MAX_COUNT, "max_frames_per_task": MAX_FRAMES,
           "max_storage_bytes": words.MAX_STORAGE}


def set_limits(conn: Connection, name: str, **limits: int | None) -> Usage:
    """Change the limits given (``max_active_tasks=40``; None: unlimited); the user's usage."""
    user_id = _named(conn, name)
    for column, value in limits.items():
        if value is not None and not 1 <= value <= HIGHEST[column]:
            raise ApiError(Code.INVALID_PARAMETER, f"The {column.removeprefix('max_').replace('_', ' ')} limit is "
                                                   f"1 to {HIGHEST[column]:,}, or none for unlimited.")
    if limits:
        conn.execute(update(users).where(users.c.id == user_id).values(**limits))
    return usage(conn, user_id)


def set_stored(conn: Connection, name: str, stored: int) -> Usage:
    """The bytes the user stores, as measured on disk (``rayfarm user quota NAME --recount``)."""
    user_id = _named(conn, name)
    conn.execute(update(users).where(users.c.id == user_id).values(storage_bytes=max(int(stored), 0)))
    return usage(conn, user_id)
