"""The SQL of leases: what the scheduler reads to choose, how a chunk is taken, how a result is written.

A chunk is taken with one conditional UPDATE (``... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED)
AND status = 1``), so two nodes — served by any number of server processes — can never hold the
same chunk. A result counts only while the frame row still carries the node's lease id. The choices
(who gets which task, what a failure means) are made in ``rayfarm.scheduler`` and ``domain.transitions``.
"""

import json
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, Float, Text, bindparam, case, cast, distinct, func, or_, select, update

from rayfarm.domain import transitions as tr
from rayfarm.domain.states import FrameStatus as F
from rayfarm.domain.states import TaskStatus
from rayfarm.store import tasks as task_store
from rayfarm.store.driver import Hot
from rayfarm.store.schema import blocklist, frames, tasks, workers

RUNNABLE = (int(TaskStatus.WAITING), int(TaskStatus.RENDERING))


def one_of(column, values) -> object:
    """``column IN (values)`` as plain comparisons: a hot statement's IN list would be expanded on every call."""
    return or_(*(column == int(value) for value in values))


@dataclass
class Claimed:
    frame: object  # frames row
    task: object  # tasks row
    settle_after: bool = False  # once committed, the caller settles the task if nothing of it goes on
    # the task row is as fresh as a lock makes it (read locked, or under SQLite's write lock) and this
    # transaction has not changed it since: a claim in the same transaction may take it as it is
    locked: bool = False


# Hot-path statements are built once and run on the driver (``driver.Hot``): SQLAlchemy's work per statement
# costs more than the SQL.
_RUNNING = (select(frames.c.task_id, func.count().label("chunks"), func.count(distinct(frames.c.node_id)).label("nodes"),
                   func.max(case((frames.c.node_id == bindparam("worker_id"), 1), else_=0)).label("mine"))
            .where(frames.c.status == int(F.RENDERING)).group_by(frames.c.task_id).subquery())
# Every runnable task with its running chunks and nodes, and this node's failures on it (blocklist).
# Only the columns the scheduler ranks by: a farm may hold thousands of runnable tasks.
# pool_tags comes as JSON text (NULL for most tasks): decoded only where it is set (``pool_tags``), not per row.
CANDIDATES = Hot(select(tasks.c.id, tasks.c.user_id, tasks.c.status, tasks.c.priority, tasks.c.submitted_at,
                     tasks.c.software, tasks.c.task_limit, cast(tasks.c.pool_tags, Text).label("pool_tags"),
                     _RUNNING.c.chunks, _RUNNING.c.nodes, _RUNNING.c.mine,
                     blocklist.c.failures.label("node_failures"))
              .select_from(tasks.outerjoin(_RUNNING, _RUNNING.c.task_id == tasks.c.id)
                           .outerjoin(blocklist, (blocklist.c.task_id == tasks.c.id)
                                      & (blocklist.c.worker_id == bindparam("worker_id"))))
              .where(one_of(tasks.c.status, RUNNABLE), tasks.c.is_deleted.is_(False)))
# live, enabled nodes other than the asking one that are not blocked for the task either (their tags)
OTHER_NODES = select(workers.c.tags).where(
    workers.c.id != bindparam("worker_id"), workers.c.state.in_(["idle", "busy"]), workers.c.disabled.is_(False),
    workers.c.draining.is_(False),
    workers.c.id.not_in(select(blocklist.c.worker_id).where(blocklist.c.task_id == bindparam("task_id"),
                                                             blocklist.c.failures >= bindparam("block_after"))))
NODES_ON_TASK = Hot(select(func.count(distinct(frames.c.node_id))).where(
    frames.c.task_id == bindparam("task_id"), frames.c.status == int(F.RENDERING)))
_LEASE_VALUES = dict(status=int(tr.LEASE.after), node_id=bindparam("p_worker"), lease_id=bindparam("p_lease"),
                     lease_expires=bindparam("p_expires"), started_at=bindparam("p_now"), ended_at=None, progress=0.0,
                     execute_seconds=None, error=None, stop_reason=None)


def _claim_statement(skip_locked: bool):
    (waiting,) = tr.LEASE.before
    pick = (select(frames.c.id).where(frames.c.task_id == bindparam("p_task"), frames.c.status == int(waiting))
            .order_by(frames.c.seq).limit(1))
    if skip_locked:
        pick = pick.with_for_update(skip_locked=True)
    return (update(frames).where(frames.c.id == pick.scalar_subquery(), frames.c.status == int(waiting))
            .values(**_LEASE_VALUES).returning(*frames.c))


CLAIM = {False: Hot(_claim_statement(False)), True: Hot(_claim_statement(True))}
TASK_ROW = Hot(select(tasks).where(tasks.c.id == bindparam("task_id")))
LOCK_TASK = Hot(task_store.LOCK_TASK)
LOCK_TASK_SKIP = Hot(select(tasks).where(tasks.c.id == bindparam("task_id")).with_for_update(skip_locked=True))
_CURRENT = select(frames).where(frames.c.lease_id == bindparam("lease_id"), frames.c.node_id == bindparam("worker_id"),
                                frames.c.status == int(F.RENDERING))
CURRENT, CURRENT_LOCKED = Hot(_CURRENT), Hot(_CURRENT.with_for_update())


def new_lease_id() -> str:
    return uuid.uuid4().hex


def _postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


# ---------------------------------------------------------------- dispatch

def candidate_rows(conn: Connection, worker_id: int) -> list:
    """Every runnable task with what the scheduler ranks by, for this node (one query)."""
    return CANDIDATES.all(conn, {"worker_id": worker_id})


def pool_tags(text: str | None) -> list[str] | None:
    """A candidate row's ``pool_tags`` (JSON text): the node tags the task may render on, None for any node."""
    return json.loads(text) or None if text else None


def other_nodes(conn: Connection, worker_id: int, task_id: int, block_after: int) -> list[list[str] | None]:
    """The tags of each live, enabled node other than this one that the task's blocklist does not exclude."""
    return list(conn.scalars(OTHER_NODES, {"worker_id": worker_id, "task_id": task_id, "block_after": block_after}))


def lock_for_claim(conn: Connection, task_id: int, status: int, limited: bool, holding: bool,
                   known: Claimed | None = None):
    """The task's row, as fresh as taking a chunk of it needs; None if it is gone or locked away (skip it).

    Wait for a task lock only while holding none; then skip locked tasks: claims that rank tasks in
    different orders can never wait on each other in a cycle (a PostgreSQL deadlock). On PostgreSQL a
    task that already renders and has no node limit is not locked at all: the chunk is taken by its own
    conditional update (SKIP LOCKED) and nothing about the task changes, so nodes leasing chunks of one
    task do not queue for its row. ``known``: the task's row as this transaction read it already (a result
    recorded just before), used instead of reading it again where it is as fresh as that read would be.
    Returns (row, holding a lock now)."""
    postgres = _postgres(conn)
    known_row = known.task if known is not None and known.task.id == task_id else None
    if postgres and not limited and status == TaskStatus.RENDERING:
        task = known_row or TASK_ROW.first(conn, {"task_id": task_id})  # both unlocked reads of this transaction
        if task is None or task.status != TaskStatus.RENDERING:
            return None, holding  # changed meanwhile: next time, under its lock
        return task, holding
    if known_row is not None and known.locked:
        return known_row, True
    statement = LOCK_TASK_SKIP if holding and postgres else LOCK_TASK
    task = statement.first(conn, {"task_id": task_id})
    return task, holding or task is not None


def nodes_on_task(conn: Connection, task_id: int) -> int:
    return int(NODES_ON_TASK.scalar(conn, {"task_id": task_id}))


def take_chunk(conn: Connection, task_id: int, worker_id: int, now: float, lease_seconds: float):
    """Lease the task's next waiting chunk to the node; its row, or None when none waits."""
    params = {"p_task": task_id, "p_worker": worker_id, "p_lease": new_lease_id(), "p_expires": now + lease_seconds,
              "p_now": now}
    return CLAIM[_postgres(conn)].first(conn, params)


def lease_frame(conn: Connection, worker_id: int, lease_id: str):
    """The frame row for a valid lease of this node, else None."""
    return CURRENT.first(conn, {"lease_id": lease_id, "worker_id": worker_id})


def leased_task(conn: Connection, worker_id: int, frame_id: int):
    """The task of a frame this node renders now (under its lease), else None."""
    frame = conn.execute(select(frames.c.task_id, frames.c.node_id, frames.c.status).where(frames.c.id == frame_id)).first()
    if frame is None or frame.node_id != worker_id or frame.status != F.RENDERING:
        return None
    return TASK_ROW.first(conn, {"task_id": frame.task_id})


def task_of_lease(conn: Connection, worker_id: int, lease_id: str):
    """The task of a valid lease of this node, else None."""
    frame = lease_frame(conn, worker_id, lease_id)
    return None if frame is None else TASK_ROW.first(conn, {"task_id": frame.task_id})


# ---------------------------------------------------------------- results

LEASED_TASK_LOCKED = Hot(select(tasks).where(tasks.c.id == select(frames.c.task_id).where(
    frames.c.lease_id == bindparam("lease_id"), frames.c.node_id == bindparam("worker_id"),
    frames.c.status == int(F.RENDERING)).scalar_subquery()).with_for_update())
_NOW = bindparam("p_now", type_=Float)
DONE = Hot(update(frames).where(frames.c.lease_id == bindparam("p_lease"), frames.c.node_id == bindparam("p_worker"),
                             frames.c.status == int(F.RENDERING))
        .values(status=int(tr.DONE.after), progress=100.0, error=None, lease_id=None, lease_expires=None, ended_at=_NOW,
                avg_cpu=bindparam("p_cpu", type_=Float), avg_memory=bindparam("p_memory", type_=Float),
                execute_seconds=func.coalesce(bindparam("p_seconds", type_=Float),
                                              _NOW - func.coalesce(frames.c.started_at, _NOW)))
        .returning(*frames.c))
# the task of a valid lease, with the chunk's type
LEASED_MAIN = Hot(select(tasks, frames.c.frame_type.label("chunk_type"))
                  .select_from(frames.join(tasks, tasks.c.id == frames.c.task_id))
                  .where(frames.c.lease_id == bindparam("lease_id"), frames.c.node_id == bindparam("worker_id"),
                         frames.c.status == int(F.RENDERING)))


def _first_chunk(status: F):
    """The task's first chunk in ``status``: a probe of the (task_id, status, seq) index, whatever the planner
    knows of the table (an EXISTS over both statuses became a bitmap scan of every waiting chunk on PostgreSQL)."""
    return (select(frames.c.id).where(frames.c.task_id == bindparam("task_id"), frames.c.status == int(status))
            .order_by(frames.c.seq).limit(1).scalar_subquery())


# another chunk of the task still waits or renders: a done main chunk cannot change a rendering task's status
STILL_GOING = Hot(select(or_(_first_chunk(F.WAITING).is_not(None), _first_chunk(F.RENDERING).is_not(None))))
MAX_ATTEMPTS = Hot(select(tasks.c.max_attempts).where(tasks.c.id == bindparam("task_id")))


def defers_settling(conn: Connection) -> bool:
    """Whether a done main chunk of a rendering task is recorded without the task's row lock, its task settled
    after commit (PostgreSQL: many nodes finishing chunks of one task at once would queue for that lock)."""
    return _postgres(conn)


def leased_chunk_kind(conn: Connection, worker_id: int, lease_id: str):
    """The task row of a valid lease and the chunk's type (``chunk_type``), without locks; None if the lease is
    not valid."""
    return LEASED_MAIN.first(conn, {"lease_id": lease_id, "worker_id": worker_id})


def lock_leased_task(conn: Connection, worker_id: int, lease_id: str):
    """The lease's task, locked: task before frame, like every other writer (no deadlock cycles)."""
    return LEASED_TASK_LOCKED.first(conn, {"lease_id": lease_id, "worker_id": worker_id})


def record_done(conn: Connection, worker_id: int, lease_id: str, now: float, seconds: float | None,
                avg_cpu: float | None, avg_memory: float | None):
    """The chunk is done under this lease; its row, or None if the lease is no longer valid."""
    return DONE.first(conn, {"p_lease": lease_id, "p_worker": worker_id, "p_now": now, "p_cpu": avg_cpu,
                               "p_memory": avg_memory, "p_seconds": seconds})


def current_locked(conn: Connection, worker_id: int, lease_id: str):
    return CURRENT_LOCKED.first(conn, {"lease_id": lease_id, "worker_id": worker_id})


def max_attempts(conn: Connection, task_id: int) -> int:
    return int(MAX_ATTEMPTS.scalar(conn, {"task_id": task_id}) or 1)


def record_failure(conn: Connection, frame, status: F, attempts: int, reason: str, *, now: float,
                   seconds: float | None, error: str, samples: tuple[float | None, float | None] | None = None) -> None:
    """A failed attempt of a leased chunk (``domain.transitions.after_failure`` chose status and reason);
    ``samples``: the node's (average CPU, average memory) of the attempt, else the heartbeats' stay."""
    values = dict(status=int(status), attempts=attempts, stop_reason=reason, progress=0.0, lease_id=None,
                  lease_expires=None, ended_at=now, error=error[:4000],
                  execute_seconds=seconds if seconds is not None else max(0.0, now - (frame.started_at or now)))
    if samples is not None:
        values.update(avg_cpu=samples[0], avg_memory=samples[1])
    conn.execute(update(frames).where(frames.c.id == frame.id, frames.c.status == int(F.RENDERING)).values(**values))


def count_failure(conn: Connection, task_id: int, worker_id: int) -> None:
    """One more failure of the task on this node (the blocklist)."""
    where = (blocklist.c.task_id == task_id) & (blocklist.c.worker_id == worker_id)
    if conn.execute(update(blocklist).where(where).values(failures=blocklist.c.failures + 1)).rowcount == 0:
        conn.execute(blocklist.insert().values(task_id=task_id, worker_id=worker_id, failures=1))


def still_going(conn: Connection, task_id: int) -> bool:
    return bool(STILL_GOING.scalar(conn, {"task_id": task_id}))


# ---------------------------------------------------------------- the sweep

def sweep_turn(conn: Connection) -> bool:
    """Whether this process may sweep now: on PostgreSQL one server process at a time (transaction lock)."""
    if not _postgres(conn):
        return True
    return bool(conn.exec_driver_sql("SELECT pg_try_advisory_xact_lock(7302)").scalar())


def expired(conn: Connection, now: float) -> list:
    """Leased chunks whose lease ran out (id, task id)."""
    return conn.execute(select(frames.c.id, frames.c.task_id).where(
        frames.c.status == int(F.RENDERING), frames.c.lease_expires < now)).all()


def requeue(conn: Connection, frame_ids: list[int], move: tr.FrameMove, expired_before: float | None = None) -> None:
    """Leased chunks wait again (``transitions.requeue``); only those still expired if ``expired_before`` is given."""
    where = [frames.c.id.in_(frame_ids), one_of(frames.c.status, move.before)]
    if expired_before is not None:
        where.append(frames.c.lease_expires < expired_before)
    conn.execute(update(frames).where(*where).values(status=int(move.after), lease_id=None, lease_expires=None,
                                                     progress=0.0, stop_reason=move.reason))


def running_with_limits(conn: Connection) -> list:
    """Every leased chunk with its task's per-chunk timeout and over-time stop."""
    query = (select(frames, tasks.c.job_stop_time, tasks.c.over_time_stop)
             .select_from(frames.join(tasks, tasks.c.id == frames.c.task_id))
             .where(frames.c.status == int(F.RENDERING)))
    return conn.execute(query).all()


def stop_over_time(conn: Connection, frame, now: float) -> bool:
    """The over-time stop (``transitions.over_time_stop``): False if the task no longer runs."""
    task = conn.execute(task_store.LOCK_TASK, {"task_id": frame.task_id}).first()
    if task.status not in RUNNABLE:
        return False
    move = tr.OVER_TIME_FRAME
    conn.execute(update(frames).where(frames.c.id == frame.id).values(
        status=int(move.after), lease_id=None, lease_expires=None, ended_at=now,
        execute_seconds=now - (frame.started_at or now), stop_reason=move.reason,
        error=f"The frame rendered longer than the task's over-time stop of {task.over_time_stop} s; "
              f"the task was stopped."))
    task_store.apply(conn, task.id, tr.over_time_stop(task.status))
    return True
