"""Task operations of the Renderbus API, each one transaction: validate every id, then apply.

Decisions (is this allowed, what status follows) come from ``rayfarm.domain.states``; this
module only reads and writes rows.
"""

import hashlib
import time
from collections.abc import Callable, Iterable

from sqlalchemy import Connection, and_, bindparam, delete, exists, insert, select, update

from rayfarm.domain import frames as fr
from rayfarm.domain import states
from rayfarm.domain import transitions as tr
from rayfarm.domain.paths import output_name
from rayfarm.domain.states import FrameStatus as F
from rayfarm.domain.states import FrameType, Op, TaskStatus
from rayfarm.domain.taskjson import TaskSpec, describe, parse
from rayfarm.protocol.codes import ApiError, Code
from rayfarm.store import bulk, pools, quotas, render_envs
from rayfarm.store.schema import frames, labels, task_files, tasks
from rayfarm.store.users import User

MAX_IDS = 1000
CONFIG_FILES = ("task.json", "upload.json", "asset.json", "tips.json")


def unknown(ids: Iterable[int]) -> ApiError:
    """937 for ids that do not exist or belong to someone else: the two answer alike."""
    listed = ", ".join(str(i) for i in sorted(ids)[:20])
    return ApiError(Code.TASK_NOT_FOUND,
                    f"Task {listed} does not exist (or is not yours); check the id with getTaskList.")


def owned(conn: Connection, user: User, ids: Iterable[int], *, lock: bool = True) -> dict[int, object]:
    """The caller's tasks with these ids, locked for update; 937 naming any id that is not theirs."""
    wanted = list(dict.fromkeys(int(i) for i in ids))
    if not wanted:
        raise ApiError(Code.MISSING_PARAMETER, "No task id was given; pass at least one task id.")
    if len(wanted) > MAX_IDS:
        raise ApiError(Code.INVALID_PARAMETER, f"At most {MAX_IDS} task ids fit in one call; split the list.")
    query = select(tasks).where(tasks.c.id.in_(wanted), tasks.c.user_id == user.id).order_by(tasks.c.id)
    if lock:
        query = query.with_for_update()
    rows = {row.id: row for row in conn.execute(query)}
    missing = [i for i in wanted if i not in rows]
    if missing:
        raise unknown(missing)
    return {i: rows[i] for i in wanted}


def _plan(rows: dict, op: str) -> list[int]:
    """Check ``op`` on every task first (all or nothing); the ids that have work to do."""
    errors, todo = [], []
    for task_id, row in rows.items():
        try:
            if states.check(op, row.status, task_id, bool(row.is_deleted)):
                todo.append(task_id)
        except ApiError as exc:
            errors.append(exc.message)
    if errors:
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise ApiError(Code.TASK_CANNOT_OPERATE, " ".join(errors[:3]) + more + " Nothing was changed.")
    return todo


# ---------------------------------------------------------------- create, files, submit

def create(conn: Connection, user: User, *, count: int, priority: int, platform: str, out_user_id: int | None,
           task_labels: list[str], clone_id: int | None, artist: str | None) -> list[tuple[int, str]]:
    source = owned(conn, user, [clone_id], lock=False)[clone_id] if clone_id else None
    quotas.check_create(conn, user, count)
    now = time.time()
    created = []
    for _ in range(count):
        values = dict(user_id=user.id, alias="", status=int(TaskStatus.CREATED), is_deleted=False,
                      priority=priority, out_user_id=out_user_id, artist=artist, created_at=now,
                      clone_original_id=clone_id)
        if source is not None:
            values.update(task_limit=source.task_limit, over_time_stop=source.over_time_stop,
                          artist=artist or source.artist, pool_tags=source.pool_tags)
        task_id = conn.execute(insert(tasks).values(**values)).inserted_primary_key[0]
        alias = f"{platform}W{task_id}"
        conn.execute(update(tasks).where(tasks.c.id == task_id).values(alias=alias))
        created.append((task_id, alias))
    new_ids = [task_id for task_id, _ in created]
    names = list(dict.fromkeys(task_labels))
    if source is not None:
        names += [n for n in conn.scalars(select(labels.c.name).where(labels.c.task_id == clone_id)) if n not in names]
        files = conn.execute(select(task_files).where(task_files.c.task_id == clone_id)).all()
        if files:
            conn.execute(insert(task_files), [dict(task_id=t, name=f.name, content=f.content, updated_at=now)
                                              for t in new_ids for f in files])
    if names:
        conn.execute(insert(labels), [dict(task_id=t, name=n) for t in new_ids for n in names])
    return created


def put_file(conn: Connection, user: User, task_id: int, name: str, content: str) -> None:
    row = owned(conn, user, [task_id])[task_id]
    states.check(Op.UPLOAD_CONFIG, row.status, task_id, bool(row.is_deleted))
    where = and_(task_files.c.task_id == task_id, task_files.c.name == name)
    if conn.execute(update(task_files).where(where).values(content=content, updated_at=time.time())).rowcount == 0:
        conn.execute(insert(task_files).values(task_id=task_id, name=name, content=content, updated_at=time.time()))


def get_file(conn: Connection, task_id: int, name: str) -> str | None:
    return conn.scalar(select(task_files.c.content).where(task_files.c.task_id == task_id, task_files.c.name == name))


def submit(conn: Connection, user: User, task_id: int, producer: str | None,
           check_spec: Callable[[User, TaskSpec, str | None], dict]) -> bool:
    """Submit a task: parse task.json, expand frames, queue. Returns False for a repeat (no-op)."""
    row = owned(conn, user, [task_id])[task_id]
    content = get_file(conn, task_id, "task.json")
    if not states.check(Op.SUBMIT, row.status, task_id, bool(row.is_deleted)):
        return False
    spec = parse(content)
    render_envs.apply_at_submit(conn, user.id, spec)  # the default environment's version; one no node has: 600
    # task.json's hardware configs; none named: the task keeps its pools (any node, or editTaskHardwareConfig's)
    pool_tags = pools.resolve(conn, spec.hardware_config_ids) if spec.hardware_config_ids else row.pool_tags
    quotas.check_submit(conn, user, spec.total_frames)  # before any work; the active tasks again at the end
    located = check_spec(user, spec, get_file(conn, task_id, "upload.json"))
    chunks = fr.chunk(spec.runs, spec.per_chunk, spec.priority)
    held = bool(spec.priority)
    priority, main = int(FrameType.PRIORITY), int(FrameType.MAIN)
    waiting, main_status = int(F.WAITING), int(F.HELD if held else F.WAITING)
    bulk.insert_frames(conn, [(task_id, seq, c.index, c.start, c.end, c.step, priority if c.priority else main,
                               waiting if c.priority else main_status) for seq, c in enumerate(chunks)])
    conn.execute(update(tasks).where(tasks.c.id == task_id).values(
        status=int(TaskStatus.WAITING), submitted_at=time.time(), scene_name=spec.scene_name[:255],
        project_name=spec.project_name, cg_id=spec.cg_id, software=spec.software, frames_range=spec.frames_text[:2000],
        total_frames=spec.total_frames, per_chunk=spec.per_chunk, pause_after_test=spec.pause_after_test,
        job_stop_time=spec.job_stop_time, max_attempts=spec.max_attempts, render={**describe(spec), **located},
        submit_hash=hashlib.sha256((content or "").encode()).hexdigest(),
        over_time_stop=row.over_time_stop or (spec.task_stop_time or None),
        producer=(producer or row.producer), pool_tags=pool_tags))
    quotas.check_activate(conn, user, 1, counted=True)  # locked: two submits at once cannot both take the last place
    return True


def output_dir_name(row) -> str:
    return output_name(row.id, row.scene_name or "scene")


# ---------------------------------------------------------------- state changes

def move_frames(conn: Connection, task_id: int, move: tr.FrameMove, frame_ids: list[int] | None = None) -> int:
    """Persist a frame move of ``domain.transitions`` for one task (only ``frame_ids`` if given); how many moved."""
    where = [frames.c.task_id == task_id, frames.c.status.in_([int(s) for s in move.before])]
    if move.only_reason is not None:
        where.append(frames.c.stop_reason == move.only_reason)
    if frame_ids is not None:
        where.append(frames.c.id.in_(frame_ids))
    values: dict = dict(status=int(move.after), lease_id=None, lease_expires=None, stop_reason=move.reason)
    if move.reset_progress:
        values["progress"] = 0.0
    if move.rerender:
        values.update(attempts=0, recommit_flag=frames.c.recommit_flag + 1, error=None)
    return conn.execute(update(frames).where(*where).values(**values)).rowcount


def apply(conn: Connection, task_id: int, change: tr.TaskChange, frame_ids: list[int] | None = None) -> int:
    """Persist a ``domain.transitions`` change of one (locked) task: its frames, then its row; how many frames moved."""
    moved = sum(move_frames(conn, task_id, move, frame_ids) for move in change.frames)
    values = dict(change.values)
    if change.status is not None:
        values.update(status=int(change.status), pre_status=change.pre_status)
    if change.stop_type is not tr.KEEP:
        values["stop_type"] = change.stop_type
    if change.completed is not tr.KEEP:
        values["completed_at"] = time.time() if change.completed == "now" else None
    if values:
        conn.execute(update(tasks).where(tasks.c.id == task_id).values(**values))
    if change.settle:
        settle(conn, task_id)
    return moved


def _operate(conn: Connection, user: User, ids: list[int], op: str, change, check=None) -> list[int]:
    """Check ``op`` on every task (all or nothing) and ``check(todo)`` if given (a quota), then apply
    ``change(status)`` to the tasks with work to do."""
    rows = owned(conn, user, ids)
    todo = _plan(rows, op)
    if todo and check is not None:
        check(todo)
    for task_id in todo:
        apply(conn, task_id, change(rows[task_id].status))
    return todo


def stop(conn: Connection, user: User, ids: list[int]) -> None:
    _operate(conn, user, ids, Op.STOP, tr.stop)


def start(conn: Connection, user: User, ids: list[int]) -> None:
    _operate(conn, user, ids, Op.START, tr.start, check=lambda todo: quotas.check_activate(conn, user, len(todo)))


def abort(conn: Connection, user: User, ids: list[int]) -> None:
    _operate(conn, user, ids, Op.ABORT, tr.abort)


def delete_tasks(conn: Connection, user: User, ids: list[int]) -> None:
    rows = owned(conn, user, ids)
    todo = _plan(rows, Op.DELETE)
    if todo:
        conn.execute(update(tasks).where(tasks.c.id.in_(todo)).values(is_deleted=True))


def full_speed(conn: Connection, user: User, ids: list[int]) -> None:
    _operate(conn, user, ids, Op.FULL_SPEED, tr.full_speed)


def change_settings(conn: Connection, user: User, ids: list[int], **values) -> None:
    """Priority, node limit, over-time stop: allowed in every state but deleted."""
    rows = owned(conn, user, ids)
    _plan(rows, Op.SETTINGS)
    conn.execute(update(tasks).where(tasks.c.id.in_(list(rows))).values(**values))


def add_label(conn: Connection, user: User, ids: list[int], name: str) -> None:
    rows = owned(conn, user, ids)
    _plan(rows, Op.SETTINGS)
    have = set(conn.scalars(select(labels.c.task_id).where(labels.c.task_id.in_(list(rows)), labels.c.name == name)))
    new = [dict(task_id=t, name=name) for t in rows if t not in have]
    if new:
        conn.execute(insert(labels), new)


def delete_labels(conn: Connection, user: User, ids: list[int], names: list[str]) -> None:
    rows = owned(conn, user, ids)
    _plan(rows, Op.SETTINGS)
    conn.execute(delete(labels).where(labels.c.task_id.in_(list(rows)), labels.c.name.in_(names)))


# ---------------------------------------------------------------- settling after frame changes

PRESENCE = (F.RENDERING, F.WAITING, F.HELD, F.WAITING_PREPROCESS, F.STOPPED, F.DONE, F.FAILED, F.TIMED_OUT)


PRESENCE_QUERY = select(*[exists().where(frames.c.task_id == bindparam("task_id"), frames.c.status == int(s))
                           .label(f"s{int(s)}") for s in PRESENCE])
LOCK_TASK = select(tasks).where(tasks.c.id == bindparam("task_id")).with_for_update()


def lock_tasks(conn: Connection, task_ids) -> None:
    """Lock task rows in id order. Writers lock a task before its frames, so concurrent changes to one
    task queue up (settle then sees every committed frame) and never deadlock."""
    for task_id in sorted(set(task_ids)):
        conn.execute(LOCK_TASK, {"task_id": task_id}).first()


# Locked: two transactions settling one task must not both judge it from before the other's frame change.
SETTLE_TASK = select(tasks.c.status, tasks.c.pause_after_test, tasks.c.started_at, tasks.c.completed_at).where(
    tasks.c.id == bindparam("task_id")).with_for_update()


def frame_presence(conn: Connection, task_id: int) -> dict[int, int]:
    """Which frame statuses the task has (1 or 0 each): index probes, cheap however many frames it has."""
    row = conn.execute(PRESENCE_QUERY, {"task_id": task_id}).one()
    return {int(s): int(bool(value)) for s, value in zip(PRESENCE, row, strict=True)}


def settle(conn: Connection, task_id: int) -> int:
    """Bring the task's status in line with its frames (call after frames changed); returns it."""
    row = conn.execute(SETTLE_TASK, {"task_id": task_id}).one()
    if row.status in states.HELD_STATES:
        return row.status
    present = frame_presence(conn, task_id)
    pending = 0
    if present[F.HELD]:  # main frames wait behind the priority frames: are any of those still unfinished?
        pending = int(conn.scalar(select(exists().where(
            frames.c.task_id == task_id, frames.c.frame_type == int(FrameType.PRIORITY),
            frames.c.status.in_([int(F.WAITING), int(F.RENDERING)])))))
    new, release = states.settle(row.status, present, priority_pending=pending, pause_after_test=row.pause_after_test)
    if release:
        move_frames(conn, task_id, tr.RELEASE_HELD)
    values: dict = {}
    if new != row.status:
        values.update(status=new, pre_status=states.public_code(row.status))
    if new == TaskStatus.RENDERING and row.started_at is None:
        values["started_at"] = time.time()
    if new in states.FINISHED and row.completed_at is None:
        values["completed_at"] = time.time()
    if values:
        conn.execute(update(tasks).where(tasks.c.id == task_id).values(**values))
    return new
