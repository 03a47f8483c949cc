"""Frame-level operations of the Renderbus API: re-render and stop chosen frames."""

from sqlalchemy import Connection, select

from rayfarm.domain import states
from rayfarm.domain import transitions as tr
from rayfarm.domain.states import FrameStatus as F
from rayfarm.domain.states import Op
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.store import quotas
from rayfarm.store import tasks as task_store
from rayfarm.store.schema import frames
from rayfarm.store.users import User


def _statuses(given: list[int] | None, allowed: frozenset, default: list[int]) -> list[int]:
    chosen = given or default
    bad = [s for s in chosen if s not in allowed]
    if bad:
        raise ApiError(Code.INVALID_PARAMETER, f"Frame status {bad} cannot be chosen here; use one of "
                                               f"{sorted(int(s) for s in allowed)}.")
    return [int(s) for s in chosen]


def _frame_ids(conn: Connection, task_id: int, ids: list[int] | None, select_all: bool) -> list[int] | None:
    """None means every frame of the task; otherwise the ids, all checked to belong to the task."""
    if select_all:
        return None
    if not ids:
        raise ApiError(Code.MISSING_PARAMETER, "Give the frame ids in 'ids', or selectAll 1 for every frame.")
    found = set(conn.scalars(select(frames.c.id).where(frames.c.task_id == task_id, frames.c.id.in_(ids))))
    missing = sorted(set(ids) - found)
    if missing:
        raise ApiError(Code.NOT_FOUND, f"Frames {missing[:20]} are not frames of task {task_id}; list them with "
                                       f"queryTaskFrames.")
    return list(found)


def recommit(conn: Connection, user: User, task_ids: list[int], statuses: list[int] | None,
             frame_ids: list[int] | None = None, select_all: bool = True) -> int:
    """Render chosen frames again (default: failed ones); returns how many chunks wait again."""
    wanted = _statuses(statuses, tr.RERENDERABLE, [F.FAILED, F.TIMED_OUT])
    rows = task_store.owned(conn, user, task_ids)
    for task_id, row in rows.items():
        states.check(Op.RECOMMIT, row.status, task_id, bool(row.is_deleted))
    reopened = sum(1 for row in rows.values() if row.status in states.FINISHED)
    if reopened:
        quotas.check_activate(conn, user, reopened)
    total = 0
    for task_id, row in rows.items():
        chosen = _frame_ids(conn, task_id, frame_ids, select_all) if len(rows) == 1 else None
        total += task_store.apply(conn, task_id, tr.rerender(row.status, frozenset(wanted)), chosen)
    return total


def stop_frames(conn: Connection, user: User, task_id: int, frame_ids: list[int] | None, select_all: bool,
                statuses: list[int] | None) -> int:
    """Stop chosen waiting/rendering frames (their nodes kill the renders); returns how many."""
    wanted = _statuses(statuses, tr.STOPPABLE, [F.WAITING, F.RENDERING, F.HELD])
    row = task_store.owned(conn, user, [task_id])[task_id]
    states.check(Op.STOP_FRAMES, row.status, task_id, bool(row.is_deleted))
    chosen = _frame_ids(conn, task_id, frame_ids, select_all)
    return task_store.apply(conn, task_id, tr.stop_frames(frozenset(wanted)), chosen)
