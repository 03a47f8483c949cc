"""Dispatch and results: claim chunks for a node, accept results, enforce timeouts.

A chunk is claimed with one conditional UPDATE (``... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED)
AND status = 1``), so two nodes — served by any number of server processes — can never hold
the same chunk. A result counts only while the frame row still carries the node's lease id.
"""

from dataclasses import dataclass

from sqlalchemy import Connection, Float, bindparam, case, distinct, exists, func, or_, select, update

from rayfarm.domain.states import FrameStatus as F
from rayfarm.domain.states import FrameType, TaskStatus
from rayfarm.scheduler.order import BLOCK_AFTER, Candidate, rank
from rayfarm.store import tasks as task_store
from rayfarm.store.schema import blocklist, frames, tasks, workers
from rayfarm.store.workers import new_lease_id

RUNNABLE = (int(TaskStatus.WAITING), int(TaskStatus.RENDERING))


def one_of(column, values) -> object:
    """``column IN (values)`` as plain comparisons: a hot statement's IN list would be expanded on every call."""
    return or_(*(column == value for value in values))



@dataclass
class Claimed:
    frame: object  # frames row
    task: object  # tasks row
    settle_after: bool = False  # once committed, the caller checks still_going and runs settle_if_finished


# Hot-path statements are built once: building SQLAlchemy expressions per call costs more than the SQL.
_RUNNING = (select(frames.c.task_id, func.count().label("chunks"), func.count(distinct(frames.c.node_id)).label("nodes"),
                   func.max(case((frames.c.node_id == bindparam("worker_id"), 1), else_=0)).label("mine"))
            .where(frames.c.status == int(F.RENDERING)).group_by(frames.c.task_id).subquery())
# Every runnable task with its running chunks and nodes, and this node's failures on it (blocklist).
# Only the columns the scheduler ranks by: a farm may hold thousands of runnable tasks.
CANDIDATES = (select(tasks.c.id, tasks.c.user_id, tasks.c.status, tasks.c.task_user_level, tasks.c.submitted_at,
                     tasks.c.software, tasks.c.task_limit, _RUNNING.c.chunks, _RUNNING.c.nodes, _RUNNING.c.mine,
                     blocklist.c.failures.label("node_failures"))
              .select_from(tasks.outerjoin(_RUNNING, _RUNNING.c.task_id == tasks.c.id)
                           .outerjoin(blocklist, (blocklist.c.task_id == tasks.c.id)
                                      & (blocklist.c.worker_id == bindparam("worker_id"))))
              .where(one_of(tasks.c.status, RUNNABLE), tasks.c.is_deleted.is_(False)))
# live, enabled nodes other than the asking one that are not blocked for the task either
OTHER_NODES = select(func.count()).select_from(workers).where(
    workers.c.id != bindparam("worker_id"), workers.c.state.in_(["idle", "busy"]), workers.c.disabled.is_(False),
    workers.c.draining.is_(False),
    workers.c.id.not_in(select(blocklist.c.worker_id).where(blocklist.c.task_id == bindparam("task_id"),
                                                             blocklist.c.failures >= BLOCK_AFTER)))
NODES_ON_TASK = select(func.count(distinct(frames.c.node_id))).where(
    frames.c.task_id == bindparam("task_id"), frames.c.status == int(F.RENDERING))
_LEASE_VALUES = dict(status=int(F.RENDERING), node_id=bindparam("p_worker"), lease_id=bindparam("p_lease"),
                     lease_expires=bindparam("p_expires"), started_at=bindparam("p_now"), ended_at=None, progress=0.0,
                     execute_seconds=None, error=None, stop_reason=None)


def _claim_statement(skip_locked: bool):
    pick = (select(frames.c.id).where(frames.c.task_id == bindparam("p_task"), frames.c.status == int(F.WAITING))
            .order_by(frames.c.seq).limit(1))
    if skip_locked:
        pick = pick.with_for_update(skip_locked=True)
    return (update(frames).where(frames.c.id == pick.scalar_subquery(), frames.c.status == int(F.WAITING))
            .values(**_LEASE_VALUES).returning(*frames.c))


CLAIM = {False: _claim_statement(False), True: _claim_statement(True)}
TASK_ROW = select(tasks).where(tasks.c.id == bindparam("task_id"))
LOCK_TASK_SKIP = select(tasks).where(tasks.c.id == bindparam("task_id")).with_for_update(skip_locked=True)
CURRENT = select(frames).where(frames.c.lease_id == bindparam("lease_id"), frames.c.node_id == bindparam("worker_id"),
                               frames.c.status == int(F.RENDERING))
CURRENT_LOCKED = CURRENT.with_for_update()


def _candidates(conn: Connection, worker_id: int) -> tuple[list[Candidate], dict[int, int], dict[int, object]]:
    """(candidates, running chunks per user, their rows by task id), in one query."""
    candidates, user_running, rows = [], {}, {}
    for row in conn.execute(CANDIDATES, {"worker_id": worker_id}):
        user_running[row.user_id] = user_running.get(row.user_id, 0) + (row.chunks or 0)
        candidates.append(Candidate(row.id, row.user_id, row.task_user_level, row.submitted_at or 0.0,
                                    row.software or "", row.task_limit, row.nodes or 0, bool(row.mine)))
        rows[row.id] = row
    return candidates, user_running, rows


def _claim_one(conn: Connection, task_id: int, worker_id: int, now: float, lease_seconds: float,
               skip_locked: bool) -> object | None:
    params = {"p_task": task_id, "p_worker": worker_id, "p_lease": new_lease_id(), "p_expires": now + lease_seconds,
              "p_now": now}
    return conn.execute(CLAIM[skip_locked], params).first()


def _blocked(conn: Connection, worker_id: int, rows: dict[int, object]) -> dict[int, int]:
    """Failures per task on this node; a block is lifted when no other node could take the task."""
    blocked = {task_id: row.node_failures for task_id, row in rows.items() if row.node_failures}
    for task_id, failures in list(blocked.items()):
        if failures >= BLOCK_AFTER and not conn.scalar(OTHER_NODES, {"worker_id": worker_id, "task_id": task_id}):
            del blocked[task_id]
    return blocked


def claim(conn: Connection, worker, software: list[str], count: int, now: float, lease_seconds: float,
          is_postgres: bool, holding: bool = False) -> list[Claimed]:
    """Lease up to ``count`` chunks to ``worker`` in the scheduler's order.

    ``holding``: this transaction already holds row locks (a result recorded just before), so it must
    not wait for a task lock (PostgreSQL: it skips locked tasks instead)."""
    candidates, user_running, rows = _candidates(conn, worker.id)
    blocked = _blocked(conn, worker.id, rows)
    claimed: list[Claimed] = []
    touched: set[int] = set()
    for candidate in rank(candidates, software=software, blocked=blocked, user_running=user_running):
        if len(claimed) >= count:
            break
        # Wait for a task lock only while holding none; then skip locked tasks: claims that rank tasks in
        # different orders can never wait on each other in a cycle (a PostgreSQL deadlock).
        if is_postgres and not candidate.limit and rows[candidate.task_id].status == TaskStatus.RENDERING:
            # No task lock: the chunk is taken by its own conditional update (SKIP LOCKED), and nothing about
            # the task changes; so nodes leasing chunks of one task do not queue for its row.
            task = conn.execute(TASK_ROW, {"task_id": candidate.task_id}).first()
            if task is None or task.status != TaskStatus.RENDERING:
                continue  # changed meanwhile: next time, under its lock
        else:  # a node limit to count under the lock, or the task's status changes with its first chunk
            statement = LOCK_TASK_SKIP if holding and is_postgres else task_store.LOCK_TASK
            task = conn.execute(statement, {"task_id": candidate.task_id}).first()
            if task is None:
                continue
            holding = True
        if task.status not in RUNNABLE or task.is_deleted:
            continue
        if task.task_limit and not candidate.on_this_node:
            # recount under the task row lock: another process may have just added a node
            nodes = conn.scalar(NODES_ON_TASK, {"task_id": task.id})
            if nodes >= task.task_limit:
                continue
        while len(claimed) < count:
            frame = _claim_one(conn, task.id, worker.id, now, lease_seconds, is_postgres)
            if frame is None:
                break
            claimed.append(Claimed(frame, task))
            holding = True  # a frame row is locked now: wait for no task lock after this
            if task.status != TaskStatus.RENDERING:
                touched.add(task.id)
            user_running[task.user_id] = user_running.get(task.user_id, 0) + 1
            if task.task_limit:
                break  # one chunk per task per call keeps the limit simple to honour
    for task_id in touched:
        task_store.settle(conn, task_id)
    return claimed


def _current(conn: Connection, worker_id: int, lease_id: str):
    return conn.execute(CURRENT_LOCKED, {"lease_id": lease_id, "worker_id": worker_id}).first()


def lease_frame(conn: Connection, worker_id: int, lease_id: str):
    """The frame row for a valid lease of this node, else None."""
    return conn.execute(CURRENT, {"lease_id": lease_id, "worker_id": worker_id}).first()


LEASED_TASK_LOCKED = (select(tasks).where(tasks.c.id == select(frames.c.task_id).where(
    frames.c.lease_id == bindparam("lease_id"), frames.c.node_id == bindparam("worker_id"),
    frames.c.status == int(F.RENDERING)).scalar_subquery()).with_for_update())
_NOW = bindparam("p_now", type_=Float)
DONE = (update(frames).where(frames.c.lease_id == bindparam("p_lease"), frames.c.node_id == bindparam("p_worker"),
                             frames.c.status == int(F.RENDERING))
        .values(status=int(F.DONE), progress=100.0, error=None, lease_id=None, lease_expires=None, ended_at=_NOW,
                avg_cpu=bindparam("p_cpu", type_=Float), avg_memory=bindparam("p_memory", type_=Float),
                execute_seconds=func.coalesce(bindparam("p_seconds", type_=Float),
                                              _NOW - func.coalesce(frames.c.started_at, _NOW)))
        .returning(*frames.c))
LEASED_MAIN = (select(frames.c.frame_type, tasks.c.status).select_from(frames.join(tasks, tasks.c.id == frames.c.task_id))
               .where(frames.c.lease_id == bindparam("lease_id"), frames.c.node_id == bindparam("worker_id"),
                      frames.c.status == int(F.RENDERING)))
# another chunk of the task still waits or renders: a done main chunk cannot change a rendering task's status
STILL_GOING = select(exists().where(frames.c.task_id == bindparam("task_id"),
                                    one_of(frames.c.status, [int(F.WAITING), int(F.RENDERING)])))


def complete(conn: Connection, worker_id: int, lease_id: str, result: str, *, error: str | None, seconds: float | None,
             avg_cpu: float | None, avg_memory: float | None, now: float, settle_after: bool = False) -> Claimed | None:
    """Record a chunk's result; None when the lease is no longer valid (the result is dropped).

    ``settle_after`` (PostgreSQL, many nodes finishing chunks of one task at once): a done main chunk of a
    rendering task is recorded without locking the task row; once this transaction committed, the caller
    checks ``still_going`` and, if nothing goes on, runs ``settle_if_finished`` (see there why that cannot
    miss the task's end).
    """
    if settle_after and result == "done":
        seen = conn.execute(LEASED_MAIN, {"lease_id": lease_id, "worker_id": worker_id}).first()
        if seen is None:
            return None
        if seen.frame_type == FrameType.MAIN and seen.status == TaskStatus.RENDERING:
            frame = conn.execute(DONE, {"p_lease": lease_id, "p_worker": worker_id, "p_now": now, "p_cpu": avg_cpu,
                                        "p_memory": avg_memory, "p_seconds": seconds}).first()
            if frame is None:
                return None
            task = conn.execute(TASK_ROW, {"task_id": frame.task_id}).first()
            return Claimed(frame, task, settle_after=True)
    # the lease's task, locked: task before frame, like every other writer (no deadlock cycles)
    task = conn.execute(LEASED_TASK_LOCKED, {"lease_id": lease_id, "worker_id": worker_id}).first()
    if task is None:
        return None
    if result == "done":
        frame = conn.execute(DONE, {"p_lease": lease_id, "p_worker": worker_id, "p_now": now, "p_cpu": avg_cpu,
                                    "p_memory": avg_memory, "p_seconds": seconds}).first()
        if frame is None:
            return None
        if not (frame.frame_type == FrameType.MAIN and task.status == TaskStatus.RENDERING
                and conn.scalar(STILL_GOING, {"task_id": task.id})):
            task_store.settle(conn, task.id)
        return Claimed(frame, task)
    frame = _current(conn, worker_id, lease_id)
    if frame is None:
        return None
    values = dict(lease_id=None, lease_expires=None, ended_at=now, avg_cpu=avg_cpu, avg_memory=avg_memory,
                  execute_seconds=seconds if seconds is not None else max(0.0, now - (frame.started_at or now)),
                  error=(error or "")[:4000], **_failure(conn, frame, worker_id, timed_out=result == "timeout"))
    conn.execute(update(frames).where(frames.c.id == frame.id).values(**values))
    task_store.settle(conn, frame.task_id)
    return Claimed(frame, task)


def still_going(conn: Connection, task_id: int) -> bool:
    return bool(conn.scalar(STILL_GOING, {"task_id": task_id}))


def settle_if_finished(conn: Connection, task_id: int) -> None:
    """After a ``settle_after`` result committed and a read saw none of the task's chunks waiting or
    rendering: under the task lock, settle the task if that still holds.

    Results recorded without the task lock may commit concurrently, each seeing the other's chunk still
    rendering. Every such result reads again after its commit, so the last one to commit sees all the
    others' and settles the task."""
    conn.execute(task_store.LOCK_TASK, {"task_id": task_id}).first()
    if not still_going(conn, task_id):
        task_store.settle(conn, task_id)


def _failure(conn: Connection, frame, worker_id: int | None, *, timed_out: bool) -> dict:
    """A failed attempt: wait again until the task's attempt limit, then failed (5) or timed out (11)."""
    max_attempts = conn.scalar(select(tasks.c.max_attempts).where(tasks.c.id == frame.task_id)) or 1
    attempts = frame.attempts + 1
    if worker_id is not None:
        _block(conn, frame.task_id, worker_id)
    final = F.TIMED_OUT if timed_out else F.FAILED
    return dict(attempts=attempts, status=int(final if attempts >= max_attempts else F.WAITING), progress=0.0,
                stop_reason="timeout" if timed_out else "error")


def _block(conn: Connection, task_id: int, worker_id: int) -> None:
    where = (blocklist.c.task_id == task_id) & (blocklist.c.worker_id == worker_id)
    if conn.execute(update(blocklist).where(where).values(failures=blocklist.c.failures + 1)).rowcount == 0:
        conn.execute(blocklist.insert().values(task_id=task_id, worker_id=worker_id, failures=1))


def sweep_turn(conn: Connection) -> bool:
    """Whether this process may sweep now: on PostgreSQL one server process at a time (transaction lock)."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.exec_driver_sql("SELECT pg_try_advisory_xact_lock(7302)").scalar())


def requeue_expired(conn: Connection, now: float) -> list[int]:
    """Leases not renewed in time (node died or lost its network) go back to waiting; task ids."""
    rows = conn.execute(select(frames.c.id, frames.c.task_id).where(
        frames.c.status == int(F.RENDERING), frames.c.lease_expires < now)).all()
    if rows:
        task_store.lock_tasks(conn, [r.task_id for r in rows])
        conn.execute(update(frames).where(frames.c.id.in_([r.id for r in rows]), frames.c.status == int(F.RENDERING),
                                          frames.c.lease_expires < now)
                     .values(status=int(F.WAITING), lease_id=None, lease_expires=None, progress=0.0,
                             stop_reason="lease expired"))
    return sorted({r.task_id for r in rows})


def enforce_time_limits(conn: Connection, now: float) -> list[int]:
    """Per-chunk timeout (job_stop_time) and the task's over-time stop; returns task ids touched."""
    touched: set[int] = set()
    stopped: set[int] = set()
    query = (select(frames, tasks.c.job_stop_time, tasks.c.over_time_stop)
             .select_from(frames.join(tasks, tasks.c.id == frames.c.task_id))
             .where(frames.c.status == int(F.RENDERING)))
    for row in conn.execute(query).all():
        elapsed = now - (row.started_at or now)
        if row.task_id in stopped:
            continue
        if row.over_time_stop and elapsed > row.over_time_stop:
            _over_time_stop(conn, row, now)
            stopped.add(row.task_id)
            touched.add(row.task_id)
        elif row.job_stop_time and elapsed > row.job_stop_time:
            task_store.lock_tasks(conn, [row.task_id])
            values = _failure(conn, row, row.node_id, timed_out=True)
            conn.execute(update(frames).where(frames.c.id == row.id, frames.c.status == int(F.RENDERING)).values(
                lease_id=None, lease_expires=None, ended_at=now, execute_seconds=elapsed,
                error=f"The chunk ran longer than its {row.job_stop_time} s limit (job_stop_time) and was killed.",
                **values))
            touched.add(row.task_id)
    for task_id in touched:
        task_store.settle(conn, task_id)
    return sorted(touched)


def _over_time_stop(conn: Connection, frame, now: float) -> None:
    task = conn.execute(select(tasks).where(tasks.c.id == frame.task_id).with_for_update()).first()
    if task.status not in RUNNABLE:
        return
    conn.execute(update(frames).where(frames.c.id == frame.id).values(
        status=int(F.TIMED_OUT), lease_id=None, lease_expires=None, ended_at=now,
        execute_seconds=now - (frame.started_at or now), stop_reason="overtime",
        error=f"The frame rendered longer than the task's over-time stop of {task.over_time_stop} s; "
              f"the task was stopped."))
    conn.execute(update(frames).where(frames.c.task_id == task.id,
                                      frames.c.status.in_([int(F.WAITING), int(F.RENDERING)]))
                 .values(status=int(F.STOPPED), lease_id=None, lease_expires=None, progress=0.0,
                         stop_reason="overtime"))
    conn.execute(update(tasks).where(tasks.c.id == task.id).values(
        status=int(TaskStatus.TIMEOUT_STOPPED), pre_status=int(task.status), stop_type="overtime"))
