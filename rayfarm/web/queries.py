"""Read queries only the dashboard needs (the rest comes through the one route table)."""

from sqlalchemy import Connection, func, select

from rayfarm.domain.states import public_code
from rayfarm.store.schema import frames, tasks
from rayfarm.store.users import User


def task_counts(conn: Connection, user: User) -> dict[str, int]:
    """The caller's submitted, not deleted tasks by public status code (what getTaskList/v2 filters on)."""
    query = (select(tasks.c.status, func.count())
             .where(tasks.c.user_id == user.id, tasks.c.is_deleted.is_(False), tasks.c.submitted_at.is_not(None))
             .group_by(tasks.c.status))
    counts: dict[str, int] = {}
    for status, count in conn.execute(query):
        key = str(public_code(status))
        counts[key] = counts.get(key, 0) + count
    return counts


def owned_frame(conn: Connection, user: User, task_id: int, frame_id: int) -> bool:
    """Whether the frame belongs to the task and the task to the user (anything else looks unknown)."""
    query = (select(frames.c.id).select_from(frames.join(tasks, tasks.c.id == frames.c.task_id))
             .where(frames.c.id == frame_id, frames.c.task_id == task_id, tasks.c.user_id == user.id))
    return conn.execute(query).first() is not None
