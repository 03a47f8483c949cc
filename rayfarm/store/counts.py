"""Counts by state: the farm's totals (summary, dashboard, metrics), read in one place."""

from collections import defaultdict

from sqlalchemy import Connection, func, select

from rayfarm.domain import states
from rayfarm.store.queries import FRAMES_IN_CHUNK
from rayfarm.store.schema import frames, tasks, workers
from rayfarm.store.users import User

_SUBMITTED = (tasks.c.is_deleted.is_(False), tasks.c.submitted_at.is_not(None))


def task_counts(conn: Connection, user: User) -> dict[str, int]:
    """The user's submitted, not deleted tasks by public status code (what getTaskList/v2 filters on)."""
    counts: dict[str, int] = defaultdict(int)
    query = select(tasks.c.status, func.count()).where(tasks.c.user_id == user.id, *_SUBMITTED).group_by(tasks.c.status)
    for status, count in conn.execute(query):
        counts[str(states.public_code(status))] += count
    return dict(counts)


def farm_summary(conn: Connection, user: User) -> dict:
    """Tasks and frames by status (the caller's, or the whole farm's for admins) and nodes by state."""
    owned = [tasks.c.is_deleted.is_(False), tasks.c.status != int(states.TaskStatus.CREATED)]
    if not user.is_admin:
        owned.append(tasks.c.user_id == user.id)
    task_counts: dict[str, int] = defaultdict(int)
    for status, count in conn.execute(select(tasks.c.status, func.count()).where(*owned).group_by(tasks.c.status)):
        task_counts[str(states.public_code(status))] += count
    frame_query = (select(frames.c.status, func.coalesce(func.sum(FRAMES_IN_CHUNK), 0))
                   .select_from(frames.join(tasks, tasks.c.id == frames.c.task_id)).where(*owned)
                   .group_by(frames.c.status))
    frame_counts = {str(status): int(count) for status, count in conn.execute(frame_query)}
    nodes = {"idle": 0, "busy": 0, "lost": 0, "offline": 0, "disabled": 0, "draining": 0}
    for state, disabled, draining, count in conn.execute(
            select(workers.c.state, workers.c.disabled, workers.c.draining, func.count())
            .group_by(workers.c.state, workers.c.disabled, workers.c.draining)):
        nodes[state] = nodes.get(state, 0) + count
        if disabled:
            nodes["disabled"] += count
        elif draining:
            nodes["draining"] += count
    return {"tasks": dict(task_counts), "frames": frame_counts, "workers": nodes,
            "user": {"name": user.name, "isAdmin": user.is_admin}}


def by_state(conn: Connection) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[tuple[str, int]]]:
    """The whole farm: (public task code, tasks), (frame status, chunks), (node state or "disabled", nodes)."""
    task_rows = [(states.public_code(status), count) for status, count in conn.execute(
        select(tasks.c.status, func.count()).where(*_SUBMITTED).group_by(tasks.c.status))]
    frame_rows = [tuple(row) for row in conn.execute(select(frames.c.status, func.count()).group_by(frames.c.status))]
    node_rows = [("disabled" if disabled else state, count) for state, disabled, count in conn.execute(
        select(workers.c.state, workers.c.disabled, func.count()).group_by(workers.c.state, workers.c.disabled))]
    return task_rows, frame_rows, node_rows
